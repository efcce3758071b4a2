"""Objectives and Pareto fronts.

A study's ``objectives`` start with ``val_acc`` (maximised); any others are costs, minimised,
taken from the trial's measures (``search.study.constraints.measure``). One objective is an ordinary
single-objective study. Several make a Pareto study: its front is ``study.best_trials``
(complete, feasible, non-dominated). A single-objective study has a front too, of accuracy
against parameters among its complete trials, which ``show`` and ``export --pareto`` use.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

ACCURACY = "val_acc"
COSTS = ("params", "macs", "latency_ms")  # trial user attributes, measured before training


def validate(objectives: Sequence[str]) -> None:
    if not objectives or objectives[0] != ACCURACY:
        raise ValueError(f"objectives: the first objective must be {ACCURACY!r}")
    for name in objectives[1:]:
        if name not in COSTS:
            raise ValueError(
                f"objectives: unknown objective {name!r}; after {ACCURACY!r} come costs: "
                f"{', '.join(COSTS)}"
            )
    if len(set(objectives)) != len(objectives):
        raise ValueError("objectives: an objective is listed twice")


def directions(objectives: Sequence[str]) -> list[str]:
    return ["maximize"] + ["minimize"] * (len(objectives) - 1)


def is_pareto(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def costs_of(study: optuna.Study) -> list[str]:
    """The cost objectives a front is drawn against: the study's own, else parameters."""
    names = study.metric_names
    return list(names[1:]) if is_pareto(study) and names else ["params"]


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Both as (accuracy, costs...): ``a`` is no worse anywhere and better somewhere."""
    no_worse = a[0] >= b[0] and all(x <= y for x, y in zip(a[1:], b[1:], strict=True))
    return no_worse and tuple(a) != tuple(b)


def front(study: optuna.Study) -> list[FrozenTrial]:
    """The non-dominated complete, feasible trials, cheapest first."""
    costs = costs_of(study)
    if is_pareto(study):
        trials = study.best_trials
    else:
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if all(v <= 0 for v in t.constraints.values()) and "params" in t.user_attrs
        ]
        points = {t.number: point(t, costs) for t in done}
        trials = [
            t for t in done if not any(_dominates(points[o.number], points[t.number]) for o in done)
        ]
    return sorted(trials, key=lambda t: (point(t, costs)[1:], -point(t, costs)[0], t.number))


def point(trial: FrozenTrial, costs: Sequence[str]) -> tuple[float, ...]:
    """(validation accuracy, costs...) of a finished trial."""
    return (trial.values[0], *(float(trial.user_attrs[c]) for c in costs))
