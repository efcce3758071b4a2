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
from search.run.options import RunOptions
from search.run.runner import deadline_of, open_study, storage_url, target
from search.storage import StorageLost, open_storage
from search.storage.claim import tidy
from search.study import ResolvedStudy
from search.trials import finished_count

POLL_S = 5.0  # how often the launcher reads the study's progress and reaps dead workers' trials


def devices(opts: RunOptions) -> list[str]:
    if opts.gpus:
        return [f"cuda:{g}" for g in opts.gpus for _ in range(opts.workers_per_gpu)]
    return [opts.device] * opts.workers


def launch(study: ResolvedStudy, opts: RunOptions) -> optuna.Study:
    url = storage_url(study, opts)
    stored = open_study(study, opts)  # created once, baselines enqueued once
    devs = devices(opts)
    cpu_workers = sum(d == "cpu" or d == "auto" for d in devs)
    threads = max(1, (os.cpu_count() or 1) // max(1, cpu_workers))
    print(f"study {stored.study_name!r}: {len(devs)} workers on {', '.join(sorted(set(devs)))}")
    env = os.environ | {"FMNIST_SEARCH_THREADS": str(threads)}
    procs = [
        subprocess.Popen(
            opts.worker_argv(index=i, device=d, study_name=stored.study_name, url=url),
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches us once
        )
        for i, d in enumerate(devs)
    ]

    def forward(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    progress = StudyProgress(stored, target(study, opts), deadline_of(study, opts))
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(POLL_S)
            # The study's one janitor: its workers never reap, so none holds the lock for it.
            with contextlib.suppress(StorageLost):  # the workers report an outage themselves
                tidy(stored, url, grace_s=opts.grace_s, retry_s=opts.storage_retry_s)
            progress.update()
        codes = [p.wait() for p in procs]
    finally:
        progress.close()
        for s, h in old.items():
            signal.signal(s, h)
    stored = optuna.load_study(study_name=stored.study_name, storage=open_storage(url))
    check_exits(codes, stored, target(study, opts))
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
