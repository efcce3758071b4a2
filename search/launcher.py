"""``run --workers K``: K worker processes (not threads: CUDA and the GIL both object to
threads) on one study, spread over ``--gpus`` with ``--workers-per-gpu`` each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna

from search import preset as presets
from search.errors import SearchError


def devices(opts) -> list[str]:
    if opts.gpus:
        return [f"cuda:{g}" for g in opts.gpus for _ in range(opts.workers_per_gpu)]
    return [opts.device] * opts.workers


def run_argv(study: str, url: str, out: str | os.PathLike, device: str, **flags) -> list[str]:
    """``fmnist-search run`` as a child process; ``flags`` that are not None become
    ``--flag-name value``."""
    argv = [sys.executable, "-m", "search.cli", "run", "--study", study, "--storage", url]
    argv += ["--out", str(out), "--device", device]
    for name, value in flags.items():
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


def worker_argv(opts, index: int, device: str, study_name: str, url: str) -> list[str]:
    return run_argv(
        opts.study,
        url,
        opts.out_dir,
        device,
        study_name=study_name,
        worker_index=index,
        heartbeat_grace=opts.grace_s,
        storage_retry=opts.storage_retry_s,
        n_trials=opts.n_trials,
        timeout=opts.timeout,
        seed=opts.seed,
        data_dir=opts.data_dir,
        artifacts=opts.artifacts,
    )


def launch(preset: presets.StudyPreset, opts) -> optuna.Study:
    from search.runner import open_study, storage_url

    url = storage_url(preset, opts)
    study = open_study(preset, opts)  # created once, baselines enqueued once
    devs = devices(opts)
    cpu_workers = sum(d == "cpu" or d == "auto" for d in devs)
    threads = max(1, (os.cpu_count() or 1) // max(1, cpu_workers))
    print(f"study {study.study_name!r}: {len(devs)} workers on {', '.join(sorted(set(devs)))}")
    env = os.environ | {"FMNIST_SEARCH_THREADS": str(threads)}
    procs = [
        subprocess.Popen(
            worker_argv(opts, i, d, study.study_name, url), env=env, start_new_session=True
        )  # a terminal's Ctrl-C reaches us once
        for i, d in enumerate(devs)
    ]

    def forward(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [p.wait() for p in procs]
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    from search.runner import finished_count
    from search.storage import open_storage

    study = optuna.load_study(study_name=study.study_name, storage=open_storage(url))
    failed = [(i, c) for i, c in enumerate(codes) if c != 0]
    target = opts.n_trials or preset.n_trials
    if failed and finished_count(study) >= target:
        print(
            f"warning: {len(failed)} worker(s) died (exit codes "
            f"{', '.join(str(c) for _, c in failed)}); their trials were retried and the "
            f"study holds its {target} trials",
            file=sys.stderr,
        )
    elif failed:
        raise SearchError(
            f"{len(failed)} of {len(procs)} workers ended with an error (worker:exit code "
            f"{', '.join(f'{i}:{c}' for i, c in failed)}); finished trials are kept: rerun "
            "the same command to finish the study"
        )
    return study
