"""How long a claim holds the study's claim lease, on a study that already holds many finished
trials: the hold bounds how many workers one study can feed (about trial length / hold).

One process claims ``--claims`` trials one after another (no contention: this is the hold
itself, not the wait) from a study prefilled with ``--prefill`` finished trials whose
parameters come from the real space and whose attributes are what a real trial stores, and
``--running`` trials in flight, partway through their epochs, as busy workers leave them. The
claims come through a storage opened afresh, as a new worker's (its first claim reads the
study). Each claimed trial samples its config outside the lock and is told COMPLETE, as a
worker would. The study is deleted afterwards.

    python -m fmnist_bench.claim_bench --storage postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m fmnist_bench.claim_bench --storage sqlite:////tmp/claim-bench.db --prefill 1000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import optuna

import search.storage.claim as claim_module
from fmnist.config import replace, to_dict
from fmnist.provenance import git_commit, package_versions
from search.storage import RETRY_S, open_storage, safe_url
from search.study import resolve
from search.trials import trial_sample

PRESET = "quick"


def finished_trials(n: int, epochs: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` finished trials as the ``quick`` study's workers store them."""
    study = resolve(PRESET)
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    packages, commit, rng = package_versions(), git_commit(), random.Random(0)
    out = []
    for number in range(n):
        trial = scratch.ask()
        config = study.space.build(trial_sample(trial, study.dims, {}), study.base)
        config = replace(config, seed=number)
        pruned = rng.random() < 0.6
        curve = [0.80 + 0.1 * rng.random() for _ in range(1 if pruned else epochs)]
        out.append(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.PRUNED
                if pruned
                else optuna.trial.TrialState.COMPLETE,
                value=None if pruned else curve[-1],
                params=trial.params,
                distributions=trial.distributions,
                intermediate_values=dict(enumerate(curve)),
                user_attrs={
                    "config": to_dict(config),
                    "params": 100_000 + number,
                    "macs": 5_000_000 + number,
                    "seed": number,
                    "split_fingerprint": "0123456789abcdef",
                    "device": "NVIDIA H100 80GB HBM3",
                    "node": f"node-{number % 8}",
                    "packages": packages,
                    "git_commit": commit,
                    "log_dir": f"runs/tb/bench/trial-{number:04d}",
                    "trained_epochs": list(range(len(curve))),
                    "epoch_seconds": [30.0] * len(curve),
                    "max_rss_mb": 1500.0,
                },
                system_attrs={"fmnist:heartbeat": time.time()},
            )
        )
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_flight(n: int, epochs: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` RUNNING trials with what a trial stores once it has trained a few epochs."""
    return [
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING,
            params=t.params,
            distributions=t.distributions,
            intermediate_values={e: v for e, v in t.intermediate_values.items() if e < 2},
            user_attrs=t.user_attrs,
            system_attrs=t.system_attrs,
        )
        for t in finished_trials(n, epochs)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--prefill", type=int, default=1000)
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--running", type=int, default=0, help="trials in flight (default 0)")
    parser.add_argument("--json", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study_def = resolve(PRESET)
    name = f"claim-bench-{uuid.uuid4().hex[:8]}"
    storage = open_storage(args.storage, retry_s=RETRY_S)  # what a worker opens
    stored = optuna.create_study(storage=storage, study_name=name, sampler=study_def.sampler(0))
    try:
        start = time.perf_counter()
        stored.add_trials(finished_trials(args.prefill, study_def.preset.epochs))
        stored.add_trials(in_flight(args.running, study_def.preset.epochs))
        fill_s = time.perf_counter() - start
        worker = optuna.load_study(
            study_name=name, storage=open_storage(args.storage, retry_s=RETRY_S)
        )
        holds: list[float] = []
        real_lock = claim_module.claim_lock

        @contextlib.contextmanager
        def timed_lock(*a, **k):
            with real_lock(*a, **k) as lease:
                t0 = time.perf_counter()
                try:
                    yield lease
                finally:
                    holds.append(time.perf_counter() - t0)

        claim_module.claim_lock = timed_lock
        totals, target = [], args.prefill + args.running + args.claims + 1  # never reached
        for _ in range(args.claims):
            t0 = time.perf_counter()
            got = claim_module.claim(worker, target, args.storage)
            totals.append(time.perf_counter() - t0)
            trial = got.trial
            study_def.space.build(trial_sample(trial, study_def.dims, {}), study_def.base)
            worker.tell(trial, random.random())
        ms, whole = [h * 1000 for h in holds], [t * 1000 for t in totals]
        if args.json:
            report = {
                "argv": ["python", "-m", "fmnist_bench.claim_bench", *(argv or sys.argv[1:])],
                "storage": safe_url(args.storage).split(":")[0],
                "prefill": args.prefill,
                "claims": args.claims,
                "running": args.running,
                "hold_ms_first": ms[0],
                "hold_ms": {"p50": statistics.median(ms), "p99": percentile(ms, 0.99)},
                "claim_ms": {"p50": statistics.median(whole), "p99": percentile(whole, 0.99)},
                "git_commit": git_commit(),
                "load_average": os.getloadavg()[0],
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(
            f"{safe_url(args.storage).split(':')[0]}  prefill {args.prefill}, {args.running} "
            f"running (added in "
            f"{fill_s:.0f}s)  {args.claims} claims: lock hold p50 {statistics.median(ms):.1f} ms "
            f"p99 {percentile(ms, 0.99):.1f} ms; whole claim p50 "
            f"{statistics.median(whole):.1f} ms p99 {percentile(whole, 0.99):.1f} ms"
        )
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(args.storage))


if __name__ == "__main__":
    main()
