"""Parts b and c: trial overhead (a trial's wall time minus its step time) over a study, and
the same study run with its pruner and without one."""

from __future__ import annotations

import statistics
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import tomli_w
from optuna.trial import FrozenTrial, TrialState

from fmnist_bench.bench import Bench, show
from fmnist_bench.clock import EpochClock
from search.run import RunOptions, start
from search.study import ResolvedStudy, resolve
from search.study.preset import preset_path

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class TimedRun:
    study: optuna.Study
    wall_seconds: float
    finished: list[FrozenTrial]

    @property
    def complete(self) -> list[FrozenTrial]:
        return [t for t in self.finished if t.state == TrialState.COMPLETE]


def timed_run(opts: RunOptions, study: ResolvedStudy | None = None) -> TimedRun:
    """``fmnist-search run`` with ``opts`` in this process (``study``: its study, resolved
    already): the stored study, its wall time and its finished (complete or pruned) trials."""
    begin = time.perf_counter()
    study = start(opts, study)
    wall = time.perf_counter() - begin
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]
    return TimedRun(study, wall, finished)


def without_pruner(study: str, work: Path) -> Path:
    path = preset_path(study)
    data = tomllib.loads(path.read_text()) | {"pruner": {"name": "none"}}
    out = work / "no-pruner" / path.name  # same stem, so the same study name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tomli_w.dumps(data))
    return out


def run_study(b: Bench, study: str | Path, *, label: str) -> dict[str, Any]:
    """Run ``study`` in this process on a fresh study (``label``); wall time, epochs trained, best
    value, and per trial its wall time (ask to tell), step time and the difference."""
    clocks: dict[int, EpochClock] = {}

    def clock(number: int) -> list[EpochClock]:
        clocks[number] = EpochClock()
        return [clocks[number]]

    done = timed_run(b.fresh_study(label, study, n_trials=b.opts.n_trials, trial_callbacks=clock))
    per_trial = []
    for t in done.finished:
        trial_wall = (t.datetime_complete - t.datetime_start).total_seconds()
        steps = clocks[t.number].step_seconds if t.number in clocks else None
        per_trial.append(
            {
                "number": t.number,
                "state": t.state.name,
                "epochs": len(t.intermediate_values),
                "wall_seconds": trial_wall,
                "step_seconds": steps,
                "overhead_seconds": trial_wall - steps if steps is not None else None,
            }
        )
    preset = resolve(str(study)).preset
    return {
        "study": preset.name,
        "pruner": preset.pruner.name,
        "trials": len(done.finished),
        "pruned": len(done.finished) - len(done.complete),
        "epochs_trained": sum(p["epochs"] for p in per_trial),
        "epochs_unpruned": len(done.finished) * preset.epochs,
        "wall_seconds": done.wall_seconds,
        # The first objective is validation accuracy, in a Pareto study as well.
        "best_val_acc": max((t.values[0] for t in done.complete), default=None),
        "per_trial": per_trial,
    }


def overhead_summary(run: dict[str, Any]) -> dict[str, Any]:
    timed = [p for p in run["per_trial"] if p["overhead_seconds"] is not None]
    if not timed:
        return {"trials": 0}
    over = [p["overhead_seconds"] for p in timed]
    walls = [p["wall_seconds"] for p in timed]
    median_over, median_wall = statistics.median(over), statistics.median(walls)
    return {
        "trials": len(timed),
        "median_seconds": median_over,
        "max_seconds": max(over),
        "first_trial_seconds": over[0],  # in a fresh worker it also loads the data
        "median_trial_seconds": median_wall,
        "median_fraction": median_over / median_wall,
        "limit_seconds": max(1.0, 0.02 * median_wall),
    }


def run(b: Bench) -> dict[str, Any]:
    """b over the study as it is; c adds the same study without its pruner."""
    opts = b.opts
    studies: dict[str, str | Path] = {"pruned": opts.study}
    if "search" in b.parts:
        studies["unpruned"] = without_pruner(opts.study, b.work)
    runs = {label: run_study(b, study, label=label) for label, study in studies.items()}
    overhead = {label: overhead_summary(r) for label, r in runs.items()}
    show(
        f"b. trial overhead over the {opts.study!r} study (wall time minus step time)",
        ["run", "trials", "median s", "max s", "first s", "median trial s", "fraction"],
        [
            [
                label,
                o.get("trials"),
                o.get("median_seconds"),
                o.get("max_seconds"),
                o.get("first_trial_seconds"),
                o.get("median_trial_seconds"),
                o.get("median_fraction"),
            ]
            for label, o in overhead.items()
        ],
    )
    if "search" not in b.parts:
        return {"overhead": overhead, "overhead_run": runs["pruned"]}
    show(
        f"c. search efficiency, {opts.study!r} study",
        ["pruner", "trials", "pruned", "epochs", "of unpruned", "wall s", "best val acc"],
        [
            [
                r["pruner"],
                r["trials"],
                r["pruned"],
                r["epochs_trained"],
                r["epochs_unpruned"],
                r["wall_seconds"],
                f"{r['best_val_acc']:.4f}" if r["best_val_acc"] is not None else None,
            ]
            for r in runs.values()
        ],
    )
    return {"overhead": overhead, "search": runs}
