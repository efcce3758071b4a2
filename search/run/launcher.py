"""``run --workers K``: K worker processes (not threads: CUDA and the GIL both object to
threads) on one study, spread over ``--gpus`` with ``--workers-per-gpu`` each."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import optuna

from search.errors import SearchError
from search.results.console import StudyProgress
from search.run.device_faults import EXIT_CODE as DEVICE_FAULT_EXIT
from search.run.join import command
from search.run.orphans import LAUNCHER_ENV
from search.run.plan import Placement, RunPlan
from search.storage import StorageLost, open_storage
from search.storage.claim import reap_exited, tidy
from search.storage.liveness import exited
from search.trials import finished_count

POLL_S = 5.0  # how often the launcher reads the study's progress and reaps dead workers' trials
CHECK_S = 1.0  # how often it looks for a worker to replace
MAX_REPLACEMENTS = 2  # per worker slot: a GPU that keeps failing is not retried for ever


def devices(placement: Placement, visible: str | None = None) -> list[str]:
    """One device per worker. ``--gpus`` indices count the GPUs this process sees: with
    ``CUDA_VISIBLE_DEVICES`` set (``visible``; default: this process's), index i is its i-th
    entry, as torch numbers them, and the workers inherit the variable, so ``--gpus 0`` under
    ``CUDA_VISIBLE_DEVICES=2,3`` is physical GPU 2."""
    if not placement.gpus:
        return [placement.device] * placement.workers
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        seen = [v.strip() for v in visible.split(",") if v.strip()]
        if bad := [g for g in placement.gpus if g >= len(seen)]:
            shown = f"GPUs 0 to {len(seen) - 1} (physical {','.join(seen)})" if seen else "no GPU"
            raise SearchError(
                f"--gpus {','.join(map(str, bad))}: CUDA_VISIBLE_DEVICES={visible!r} leaves "
                f"{shown}; --gpus counts the visible GPUs from 0, so use those indices"
            )
    return [f"cuda:{g}" for g in placement.gpus for _ in range(placement.workers_per_gpu)]


def physical(device: str, visible: str | None) -> str:
    """``device`` with the physical GPU it is under ``visible`` (CUDA_VISIBLE_DEVICES)."""
    if not device.startswith("cuda:") or visible is None:
        return device
    return f"{device} (physical {visible.split(',')[int(device.split(':')[1])].strip()})"


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each of ``workers`` processes on this machine: the cores shared
    out, GPU workers included. A GPU worker's threads run its Python dispatch and spin-wait;
    eight packed workers with every core each spin over each other instead of feeding the GPU.
    On a CPU, K workers x 1 thread beat 1 worker x K threads (docs/BENCHMARKS.md, part f)."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def launch(plan: RunPlan, url: str, stored: optuna.Study, devs: list[str]) -> optuna.Study:
    """One worker process per entry of ``devs`` (``devices``) on the study ``run`` opened,
    each joining it by URL and name; this process reaps their dead trials and shows progress."""
    threads = threads_per_worker(len(devs))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    shown = ", ".join(physical(d, visible) for d in sorted(set(devs)))
    print(f"study {stored.study_name!r}: {len(devs)} workers on {shown}, {threads} threads each")
    env = os.environ | {"FMNIST_SEARCH_THREADS": str(threads), LAUNCHER_ENV: str(os.getpid())}

    def start_worker(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            command(url, stored.study_name, i, devs[i]),
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches us once
        )

    procs = [start_worker(i) for i in range(len(devs))]
    every = list(procs)  # replaced ones too, whose trials are looked for when they exit
    replaced = [0] * len(procs)
    forwarded: list[str] = []
    looked: set[int] = set()  # exited workers whose trials were looked for

    def reap_ended() -> None:
        """A worker that exited holds no trial: one it left RUNNING (killed, or its last write
        cut off by a signal) is failed and retried at once, not after the heartbeat grace."""
        gone = [p for p in every if p.returncode is not None and p.pid not in looked]
        if not gone:
            return
        sent = forwarded[0] if forwarded else None
        ended = dict(exited(p.pid, p.returncode, sent) for p in gone)
        with contextlib.suppress(StorageLost):  # an outage: the grace reaps them later
            if reaped := reap_exited(stored, url, ended, retry_s=plan.storage_retry_s):
                print(
                    f"trial(s) {', '.join(map(str, reaped))} left RUNNING by an exited "
                    "worker: failed, retries queued",
                    file=sys.stderr,
                )
            looked.update(p.pid for p in gone)

    def forward(signum, _frame):
        forwarded.append(signal.Signals(signum).name)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    progress = StudyProgress(stored, plan.n_trials, plan.monotonic_deadline())
    try:
        last = time.monotonic()
        while any(p.returncode is None for p in procs):
            time.sleep(CHECK_S)
            for i, p in enumerate(procs):
                if p.poll() == DEVICE_FAULT_EXIT and replaced[i] < MAX_REPLACEMENTS:
                    replaced[i] += 1
                    print(
                        f"worker {i} on {devs[i]} exited after a device fault; starting a "
                        f"fresh worker there ({replaced[i]} of {MAX_REPLACEMENTS})",
                        file=sys.stderr,
                    )
                    procs[i] = start_worker(i)
                    every.append(procs[i])
            reap_ended()
            if time.monotonic() - last >= POLL_S:
                # The study's one janitor: its workers never reap, so none holds the lock for it.
                with contextlib.suppress(StorageLost):  # the workers report an outage themselves
                    tidy(stored, url, grace_s=plan.grace_s, retry_s=plan.storage_retry_s)
                progress.update()
                last = time.monotonic()
        codes = [p.wait() for p in procs]
    finally:
        progress.close()
        for s, h in old.items():
            signal.signal(s, h)
    stored = optuna.load_study(study_name=stored.study_name, storage=open_storage(url))
    reap_ended()
    check_exits(codes, stored, plan.n_trials)
    return stored


def check_exits(codes: list[int | str], stored: optuna.Study, goal: int) -> None:
    """A worker that died is a warning when the others finished the study for it, else an
    error. ``codes``: each worker's exit code, or why its launcher gave it up."""
    failed = [(i, c) for i, c in enumerate(codes) if c != 0]
    if failed and finished_count(stored) >= goal:
        print(
            f"warning: {len(failed)} worker(s) died (exit codes "
            f"{', '.join(str(c) for _, c in failed)}); their trials were retried and the "
            f"study holds its {goal} trials",
            file=sys.stderr,
        )
    elif failed:
        raise SearchError(
            f"{len(failed)} of {len(codes)} workers ended with an error (worker:exit code "
            f"{', '.join(f'{i}:{c}' for i, c in failed)}); finished trials are kept: rerun "
            "the same command to finish the study"
        )
