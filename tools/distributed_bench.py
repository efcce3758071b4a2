"""Figures for docs/DISTRIBUTED.md: one small study run with ``--workers K`` on this machine
and with ``--ray`` on a one-node Ray cluster started here, same K, same PostgreSQL.

    python tools/distributed_bench.py [--trials 12] [--workers 2] [--storage URL]

Prints, per launcher, the wall time of the whole command, trials per hour, the seconds per
trial between the first trial's start and the last one's end (the steady state: workers up,
claiming trials from the storage), and the checkpoint bytes written per trial. Ray adds a
one-time cost (connecting, placing the worker actors, which the script also times alone) and
should add nothing per trial, since trials are claimed from the storage, not from Ray.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TINY = ROOT / "tests" / "reliability_tests" / "tiny.toml"  # 1 epoch on 200 images


def run(args: list[str], storage: str, name: str, out: Path) -> float:
    command = [sys.executable, "-m", "search.cli", "run", "--study", str(TINY)]
    command += ["--storage", storage, "--study-name", name, "--out", str(out), *args]
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    if done.returncode:
        sys.exit(f"distributed_bench: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def ckpt_kb_per_trial(storage: str, name: str) -> float:
    """Checkpoint bytes the trials wrote (each stores its ``ckpt_bytes``), per trial, in kB."""
    trials = optuna.load_study(study_name=name, storage=storage).trials
    return sum(t.user_attrs.get("ckpt_bytes", 0) for t in trials) / len(trials) / 1e3


def span_s(storage: str, name: str) -> float:
    trials = optuna.load_study(study_name=name, storage=storage).trials
    return (
        max(t.datetime_complete for t in trials).timestamp()
        - min(t.datetime_start for t in trials).timestamp()
    )


def placement_s(workers: int) -> float:
    """Seconds from asking Ray for ``workers`` worker actors to all of them running."""
    import ray

    from search.run.ray_launcher import Worker

    actor = ray.remote(num_cpus=1, max_concurrency=2, scheduling_strategy="SPREAD")(Worker)
    start = time.perf_counter()
    actors = [actor.remote() for _ in range(workers)]
    ray.get([a.__ray_ready__.remote() for a in actors])
    seconds = time.perf_counter() - start
    for a in actors:
        ray.kill(a)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--storage", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", default="/tmp/distributed-bench")
    a = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster: no token
    import ray

    ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    placed = placement_s(a.workers)
    common = ["--n-trials", str(a.trials), "--workers", str(a.workers)]
    rows = []
    for label, extra in (("local --workers", []), ("Ray --ray", ["--ray", address])):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        wall = run([*common, *extra], a.storage, name, Path(a.out))
        span = span_s(a.storage, name)
        rows.append((label, wall, span, ckpt_kb_per_trial(a.storage, name)))
    ray.shutdown()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"{a.trials} trials of {TINY.relative_to(ROOT)}, {a.workers} workers, PostgreSQL, "
        f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the end: other "
        f"work on the machine counts), commit {commit}\n"
    )
    print(
        "| launcher | wall s | trials/hour (wall) | s per trial (first start to last end) "
        "| checkpoint kB written per trial |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, wall, span, kb in rows:
        print(
            f"| {label} | {wall:.1f} | {a.trials / wall * 3600:.0f} | {span / a.trials:.2f} "
            f"| {kb:.0f} |"
        )
    (_, local_wall, local_span, _), (_, ray_wall, ray_span, _) = rows
    print(
        f"\nRay, once per run: {ray_wall - local_wall:+.1f} s of wall time over the local "
        f"launcher; placing {a.workers} worker actors alone takes {placed:.2f} s"
    )
    print(
        f"Ray, per trial (steady state): {(ray_span - local_span) / a.trials:+.2f} s "
        "against the local launcher"
    )


if __name__ == "__main__":
    main()
