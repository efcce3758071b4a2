"""Figures for docs/DISTRIBUTED.md: one small study run with ``--workers K`` on this machine
and with ``--ray`` on a one-node Ray cluster started here, same K, same PostgreSQL.

    python tools/distributed_bench.py [--trials 12] [--workers 2] [--storage URL] [--json PATH]

Prints, per launcher, the wall time of the whole command, trials per hour, the seconds per
trial between the first trial's start and the last one's end (the steady state: workers up,
claiming trials from the storage), and the checkpoint bytes written per trial. Ray adds a
one-time cost (connecting, placing the worker actors, which the script also times alone) and
should add nothing per trial, since trials are claimed from the storage, not from Ray. The
study is the fault suite's smallest preset (``tests/testing.py``'s ``SMALLEST``: a 4-wide
ResNet, 200 training images, one epoch), written into ``--out``. ``--json`` also writes the
figures with the commit and machine, the result file docs/DISTRIBUTED.md renders
(``tools/docs_figures.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import optuna

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the checkout's packages, not an installed copy
from search.run.ray_worker import Worker  # noqa: E402
from tests.testing import smallest  # noqa: E402

PRESET = "tests/testing.py SMALLEST"


def run(args: list[str], preset: Path, storage: str, name: str, out: Path) -> float:
    command = [sys.executable, "-m", "search.cli", "run", "--study", str(preset)]
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


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


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
    import ray  # heavy; imported once main has set the RAY_* settings it reads

    actor = ray.remote(num_cpus=1, max_concurrency=2, scheduling_strategy="SPREAD")(Worker)
    start = time.perf_counter()
    actors = [actor.remote() for _ in range(workers)]
    ray.get([a.__ray_ready__.remote() for a in actors])
    seconds = time.perf_counter() - start
    for a in actors:
        ray.kill(a)
    return seconds


def markdown(report: dict[str, Any]) -> str:
    """The figures as docs/DISTRIBUTED.md shows them."""
    rows = report["rows"]
    trials = report["trials"]
    lines = [
        f"{trials} trials of {report['preset']}, {report['workers']} workers, PostgreSQL, "
        f"{report['cpus']} CPUs (load average {report['load_average']:.1f} at the end: other "
        f"work on the machine counts), commit {report['commit']}",
        "",
        "| launcher | wall s | trials/hour (wall) | s per trial (first start to last end) "
        "| checkpoint kB written per trial |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['launcher']} | {r['wall_s']:.1f} | {trials / r['wall_s'] * 3600:.0f} | "
            f"{r['span_s'] / trials:.2f} | {r['ckpt_kb_per_trial']:.0f} |"
        )
    local, ray_row = rows
    lines += [
        "",
        f"Ray, once per run: {ray_row['wall_s'] - local['wall_s']:+.1f} s of wall time over the "
        f"local launcher; placing {report['workers']} worker actors alone takes "
        f"{report['placement_s']:.2f} s",
        f"Ray, per trial (steady state): {(ray_row['span_s'] - local['span_s']) / trials:+.2f} s "
        "against the local launcher",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--storage", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", default="/tmp/distributed-bench")
    parser.add_argument("--json", type=Path, help="also write the figures here, as JSON")
    a = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster: no token
    out = Path(a.out)
    preset = smallest(out)
    import ray  # heavy; imported once the RAY_* settings above are set

    ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    placed = placement_s(a.workers)
    common = ["--n-trials", str(a.trials), "--workers", str(a.workers)]
    rows = []
    for label, extra in (("local --workers", []), ("Ray --ray", ["--ray", address])):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        wall = run([*common, *extra], preset, a.storage, name, out)
        rows.append(
            {
                "launcher": label,
                "wall_s": wall,
                "span_s": span_s(a.storage, name),
                "ckpt_kb_per_trial": ckpt_kb_per_trial(a.storage, name),
            }
        )
    ray.shutdown()
    commit = _git("rev-parse", "--short", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    report = {
        "argv": sys.argv,
        "preset": PRESET,
        "trials": a.trials,
        "workers": a.workers,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "commit": commit,
        "placement_s": placed,
        "rows": rows,
    }
    print(markdown(report))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {a.json}")


if __name__ == "__main__":
    main()
