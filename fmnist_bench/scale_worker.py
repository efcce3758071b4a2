"""One simulated worker of ``fmnist-bench scale``: the real worker loop
(``search.run.worker.work``), claim, heartbeat, sampler and pruner, with a fake objective that
samples its config through the real space, sets the attributes a real trial sets, sleeps per
epoch instead of training, reports each epoch, can be pruned, and returns an accuracy that
depends on its parameters.

Torch-free (nothing here or below imports torch or Lightning), so 64 of them fit in a few
GiB. Run by ``fmnist_bench.scale`` as ``python -m fmnist_bench.scale_worker PLAN FIRST
[COUNT]``: ``PLAN`` is the pickled ``WorkerPlan``; the process runs workers ``FIRST`` to
``FIRST + COUNT - 1``, one a thread where COUNT > 1, sharing one storage (and its cache of the
study) as Optuna's ``n_jobs`` threads do. Each worker appends its events, one JSON object a
line, to ``<events>/w<INDEX>.jsonl`` as they happen, so a worker that is SIGKILLed leaves its
figures.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import random
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

import search.run.worker as worker_module
import search.storage.claim as claim_module
from fmnist.config import RunConfig, from_dict, replace, to_dict
from search.pruners import EqualEpochHalving, record_accuracy
from search.run.worker import signals_interrupt, work
from search.storage import open_storage
from search.storage.liveness import RETRY_OF
from search.trials import trial_sample
from spaces import Space

WORKER_ATTR = "sim_worker"  # the one attribute a real trial does not carry: who ran it


@dataclass(frozen=True)
class WorkerPlan:
    """Everything a worker needs, resolved once by the driver (which may import torch)."""

    url: str
    study_name: str
    target: int
    epochs: int
    epoch_s: float
    space: Space
    dims: dict[str, Any]
    fixed: dict[str, Any]
    base: RunConfig
    samplers: tuple[optuna.samplers.BaseSampler, ...]  # one per worker, seeded apart
    pruner: optuna.pruners.BasePruner
    rule: EqualEpochHalving | None
    attrs: dict[str, Any]  # what every trial stores alike: packages, commit, split, device
    grace_s: float
    retry_s: float
    events: str
    go: str  # the file whose appearance starts every worker at once


def peak_rss_mb() -> float:
    """This process's peak resident memory (``ru_maxrss`` would report the driver's: Linux
    keeps it across the exec that starts a worker)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Events:
    """Appends one JSON line per event and flushes, so a killed worker's lines survive."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "a", buffering=1)

    def __call__(self, kind: str, **fields: Any) -> None:
        self._f.write(json.dumps({"e": kind, "t": time.time(), **fields}) + "\n")


def accuracy(params: dict[str, Any], seed: int) -> float:
    """A final accuracy that depends on the parameters (best near lr 3e-3, width 32, little
    dropout), with the spread of seeds: enough for TPE and the median pruner to act on."""
    lr = params.get("optim.lr", 3e-3)
    acc = 0.90 - 0.03 * abs(math.log10(lr / 3e-3))
    acc += 0.005 * (params.get("vgg.width", 32) == 32)
    acc -= 0.02 * params.get("vgg.dropout", 0.1) + 0.01 * params.get("vgg.fc_dropout", 0.3)
    return acc + random.Random(seed).gauss(0.0, 0.004)


class FakeObjective:
    """What ``search.run.objective.Objective`` does to a trial, with a sleep for training."""

    def __init__(self, plan: WorkerPlan, index: int, events: Events) -> None:
        self.plan, self.index, self.events = plan, index, events
        self.node = f"{socket.gethostname()}/sim-{index}"

    def config_for(self, trial: optuna.Trial) -> tuple[RunConfig, list[float]]:
        """The sampled config (a retry's origin's instead, and the epochs it reported)."""
        p = self.plan
        t0 = time.perf_counter()
        config = p.space.build(trial_sample(trial, p.dims, p.fixed), p.base)
        self.events("sample", number=trial.number, s=time.perf_counter() - t0)
        number = trial.user_attrs.get(RETRY_OF)
        if number is not None:
            origin = trial.study.get_trials(deepcopy=False)[number]
            if "config" in origin.user_attrs:
                done = [origin.intermediate_values[e] for e in sorted(origin.intermediate_values)]
                return from_dict(RunConfig, origin.user_attrs["config"]), done
        return replace(config, seed=p.base.seed + trial.number), []

    def __call__(self, trial: optuna.Trial) -> float:
        p = self.plan
        config, done = self.config_for(trial)
        width = int(trial.params.get("vgg.width", 32))
        for key, value in {
            "config": to_dict(config),
            "params": 50_000 + 1_000 * width,  # simulated: no model is built
            "macs": 2_000_000 + 10_000 * width,
            "seed": config.seed,
            "node": self.node,
            "log_dir": f"runs/tb/{p.study_name}/trial-{trial.number:04d}",
            WORKER_ATTR: self.index,
            **p.attrs,
        }.items():
            trial.set_user_attr(key, value)
        final = accuracy(trial.params, config.seed)
        curve = [final - 0.02 * (p.epochs - 1 - e) for e in range(p.epochs)]
        trained, seconds = [], []
        for epoch in range(p.epochs):
            if epoch < len(done):  # resumed: reported as they were, not trained again
                value = done[epoch]
            else:
                t0 = time.perf_counter()
                time.sleep(p.epoch_s)
                value = curve[epoch]
                trained.append(epoch)
                seconds.append(time.perf_counter() - t0)
                trial.set_user_attr("trained_epochs", trained)
                trial.set_user_attr("epoch_seconds", seconds)
            if p.rule is None:
                trial.report(value, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}")
            else:
                record_accuracy(trial, value, epoch)
                if p.rule.should_stop(trial, epoch):
                    raise optuna.TrialPruned(f"stopped at epoch {epoch} by the equal-epoch rule")
        best = max(range(p.epochs), key=lambda e: curve[e])
        for key, value in {
            "best_val_acc": curve[best],
            "best_epoch": best,
            "train_images": 54_000,
            "precision": "32",
            "max_rss_mb": peak_rss_mb(),
        }.items():
            trial.set_user_attr(key, value)
        return curve[-1]


_HERE = threading.local()  # the worker this thread is: its events, and whether it claims


def timed() -> None:
    """``claim_lock`` and ``claim`` wrapped from outside (the library is not changed): the
    lock's wait and hold (with the holding thread's CPU seconds in it), and a claim's seconds
    around them, each written as an event of the worker the calling thread runs."""
    real_lock, real_claim = claim_module.claim_lock, worker_module.claim

    @contextlib.contextmanager
    def lock(*args, **kwargs):
        events, where = _HERE.events, getattr(_HERE, "where", "tidy")
        t0 = time.perf_counter()
        with real_lock(*args, **kwargs) as held:  # whatever the lock yields, passed on
            t1, cpu = time.perf_counter(), time.thread_time()
            events("acq", wait=t1 - t0, where=where)
            try:
                yield held
            finally:  # the holder's own CPU: the hold less its waits for a core and a server
                hold, cpu = time.perf_counter() - t1, time.thread_time() - cpu
                events("rel", hold=hold, cpu=cpu, where=where)

    def claim(*args, **kwargs):
        _HERE.where = "claim"
        t0 = time.perf_counter()
        try:
            got = real_claim(*args, **kwargs)
        finally:
            _HERE.where = "tidy"
        number = got.trial.number if got.trial is not None else None
        _HERE.events("claim", s=time.perf_counter() - t0, number=number, done=got.done)
        return got

    claim_module.claim_lock, worker_module.claim = lock, claim


def simulate(plan: WorkerPlan, index: int, storage: optuna.storages.BaseStorage) -> None:
    """Worker ``index``: joins the study, waits for the go, works until the target."""
    events = _HERE.events = Events(Path(plan.events) / f"w{index}.jsonl")
    events("start", pid=os.getpid())
    study = optuna.load_study(
        study_name=plan.study_name,
        storage=storage,
        sampler=plan.samplers[index % len(plan.samplers)],
        pruner=plan.pruner,
    )
    events("ready", rss_mb=peak_rss_mb())
    while not os.path.exists(plan.go):
        time.sleep(0.05)
    events("go", torch="torch" in sys.modules, lightning="lightning" in sys.modules)
    ran = work(
        study,
        FakeObjective(plan, index, events),
        target=plan.target,
        url=plan.url,
        grace_s=plan.grace_s,
        retry_s=plan.retry_s,
        janitor=False,  # as a launcher's workers: the driver is the study's one janitor
        on_trial=lambda t: events("trial", number=t.number, state=t.state.name),
    )
    events("exit", ran=len(ran), rss_mb=peak_rss_mb())


def main(argv: list[str] | None = None) -> int:
    plan_path, first, *count = argv or sys.argv[1:]
    plan: WorkerPlan = pickle.loads(Path(plan_path).read_bytes())
    indexes = range(int(first), int(first) + int(count[0] if count else 1))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    timed()
    storage = open_storage(plan.url, retry_s=plan.retry_s)
    if len(indexes) == 1:
        with signals_interrupt():
            simulate(plan, indexes[0], storage)
        return 0
    failed: list[int] = []

    def one(index: int) -> None:
        try:
            simulate(plan, index, storage)
        except BaseException:  # as a worker process would: its traceback, a failed exit
            traceback.print_exc()
            failed.append(index)

    threads = [threading.Thread(target=one, args=(i,), name=f"sim-{i}") for i in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
