"""Stopping unpromising trials: one registry of every pruner a preset's ``[pruner]`` can name.

Optuna's own pruners (``hyperband``, ``sha``, ``median``, ``none``) serve single-objective
studies. Optuna cannot prune a multi-objective trial, so a Pareto study takes our
``equal-epoch`` rule (``_equal_epoch.py``), which the trial applies itself, or ``none``.

Example::

    pruning = make("hyperband", epochs=9, costs=(), options={})
    pruning.optuna      # HyperbandPruner(min_resource=1, max_resource=9, ...)
    pruning.rule        # None: Optuna prunes
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from search.pruners._equal_epoch import CURVE, EqualEpochHalving, record_accuracy
from search.pruners._optuna import OPTUNA_PRUNERS
from search.pruners._savings import Saving, saving

EQUAL_EPOCH = "equal-epoch"
PARETO_PRUNERS = (EQUAL_EPOCH, "none")

__all__ = [
    "CURVE",
    "EQUAL_EPOCH",
    "EqualEpochHalving",
    "Pruning",
    "Saving",
    "make",
    "names",
    "record_accuracy",
    "saving",
]


@dataclass(frozen=True)
class Pruning:
    """What stops a study's trials: the pruner Optuna holds, and the rule a trial applies
    itself (a Pareto study's, where Optuna holds a ``NopPruner``)."""

    optuna: optuna.pruners.BasePruner
    rule: EqualEpochHalving | None = None


def names(*, pareto: bool = False) -> list[str]:
    return list(PARETO_PRUNERS) if pareto else list(OPTUNA_PRUNERS)


def make(name: str, *, epochs: int, costs: Sequence[str], options: dict[str, Any]) -> Pruning:
    """The pruning of a study with ``epochs`` as budget; ``costs`` are its cost objectives
    (none: a single-objective study)."""
    if costs:
        return Pruning(optuna.pruners.NopPruner(), _pareto_rule(name, epochs, costs, options))
    if name == EQUAL_EPOCH:
        raise ValueError(
            f"pruner.name: {EQUAL_EPOCH!r} is for Pareto studies (several objectives); "
            f"a single-objective study takes one of {', '.join(OPTUNA_PRUNERS)}"
        )
    if name not in OPTUNA_PRUNERS:
        raise ValueError(
            f"pruner.name: unknown pruner {name!r}; known: {', '.join(OPTUNA_PRUNERS)}"
        )
    try:
        return Pruning(OPTUNA_PRUNERS[name](epochs, **options))
    except TypeError as e:
        raise ValueError(f"pruner.options: {name} pruner rejects these options ({e})") from None


def _pareto_rule(
    name: str, epochs: int, costs: Sequence[str], options: dict[str, Any]
) -> EqualEpochHalving | None:
    if name == "none":
        return None
    if name == "sha":
        raise ValueError(
            f"pruner.name: a Pareto study's successive halving is now called {EQUAL_EPOCH!r} "
            "('sha' names Optuna's pruner, which cannot prune a multi-objective trial); "
            f'write name = "{EQUAL_EPOCH}"'
        )
    if name != EQUAL_EPOCH:
        raise ValueError(
            f"pruner.name: {name!r} cannot prune a multi-objective trial; a Pareto study "
            f"takes {EQUAL_EPOCH!r} (successive halving on accuracy at equal epochs) or 'none'"
        )
    try:
        return EqualEpochHalving(epochs=epochs, costs=costs, **options)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"pruner.options: the {EQUAL_EPOCH} rule rejects these options ({e})"
        ) from None
