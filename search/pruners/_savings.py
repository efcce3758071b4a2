"""What a pruner typically saves, for the estimate a search prints before its first trial.

The saving is the share of a study's epochs (trials x epoch budget) the pruner leaves to
train, under a stated assumption per kind: successive halving keeps ``1/reduction_factor``
of the trials at each rung; Hyperband splits the trials between its brackets as Optuna
allocates them; the median rule stops half the trials at its first check. It is a
planning figure, not a promise: the trials' own curves decide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from search.pruners._equal_epoch import EqualEpochHalving
from search.pruners._optuna import DEFAULT_OPTIONS


@dataclass(frozen=True)
class Saving:
    """``kept``: the share of the epochs a study trains with this pruner; ``assumes``: the
    rule behind that figure, in words for the start line."""

    kept: float
    assumes: str


def _halving(epochs: int, rungs: Sequence[int], factor: int) -> float:
    """Share of ``epochs`` trained when a trial checked after ``rungs[k]`` epochs goes on
    with probability ``1/factor`` at each rung."""
    reached = sum(factor ** -sum(r < e for r in rungs) for e in range(1, epochs + 1))
    return reached / epochs


def _rungs(first: int, factor: int, epochs: int, offset: int) -> list[int]:
    # Optuna checks a rung at step min_resource * factor**k, steps counted from 0: one epoch
    # later than the rung's number; the equal-epoch rule checks after that many epochs.
    out, r = [], first
    while r + offset < epochs:
        out.append(r + offset)
        r *= factor
    return out


def saving(
    name: str, *, epochs: int, options: dict[str, Any], rule=None, trials: int | None = None
) -> Saving:
    """The typical saving of the pruner ``name`` with the preset's ``options`` on a study of
    ``epochs`` epochs; ``rule`` is a Pareto study's own rule, when it has one. ``trials``,
    where known, lets the median rule's first ``n_startup_trials`` (never stopped) count."""
    if isinstance(rule, EqualEpochHalving):
        f = rule.reduction_factor
        return Saving(
            _halving(epochs, rule.rungs, f),
            f"equal-epoch halving keeps 1/{f} at epochs {', '.join(map(str, rule.rungs))}",
        )
    o = DEFAULT_OPTIONS.get(name, {}) | options
    if name in ("sha", "hyperband"):
        first, f = o.get("min_resource"), o.get("reduction_factor")
        if not isinstance(first, int) or not isinstance(f, int):
            return Saving(1.0, f"{name} with min_resource={first!r}: no saving assumed")
        if name == "sha":
            rungs = _rungs(first, f, epochs, offset=1)
            return Saving(
                _halving(epochs, rungs, f),
                f"successive halving keeps 1/{f} after epochs {', '.join(map(str, rungs))}",
            )
        top = int(o.get("max_resource", epochs))
        brackets = math.floor(math.log(top / first, f)) + 1 if top >= first else 1
        # Optuna's share of trials per bracket; bracket b starts halving at first * f**b.
        weights = [
            math.ceil(brackets * f ** (brackets - 1 - b) / (brackets - b)) for b in range(brackets)
        ]
        kept = sum(
            w * _halving(epochs, _rungs(first * f**b, f, epochs, offset=1), f)
            for b, w in enumerate(weights)
        ) / sum(weights)
        return Saving(kept, f"Hyperband's {brackets} brackets each keep 1/{f} per rung")
    if name == "median":
        warmup, startup = int(o.get("n_warmup_steps", 0)), int(o.get("n_startup_trials", 0))
        first_check = min(epochs, warmup + 1)
        kept = 0.5 + 0.5 * first_check / epochs
        if trials:
            unpruned = min(trials, startup)
            kept = (unpruned + (trials - unpruned) * kept) / trials
        return Saving(
            kept,
            f"the median rule stops half the trials after the first {startup} at epoch "
            f"{first_check}",
        )
    return Saving(1.0, "no pruning")
