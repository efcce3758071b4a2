"""Size and latency budgets of a study, checked before any training.

A trial's *measures* (parameters, multiply-accumulates, and CPU latency at batch 1 when a
budget or an objective needs it) come from the untrained network. Each budget becomes an
Optuna constraint (``Trial.set_constraint``; positive means violated), so TPE, NSGA-II and GP
learn where the feasible region lies; a config over any budget is *rejected*: it ends PRUNED
with zero epochs trained, the reason in its ``rejected`` attribute, and it does not count
towards ``n_trials``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna

from search.text import fmt
from search.trials import REJECTED

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Constraints:
    """A preset's ``[constraints]`` table; 0 means no limit."""

    max_params: int = 0
    max_macs: int = 0  # multiply-accumulates per 28x28 image
    max_latency_ms: float = 0.0  # CPU, batch 1, one thread, median (see cpu_latency_ms)

    def limits(self) -> dict[str, float]:
        """Measure name -> limit, for the budgets that are set."""
        limits = {
            "params": self.max_params,
            "macs": self.max_macs,
            "latency_ms": self.max_latency_ms,
        }
        return {name: limit for name, limit in limits.items() if limit > 0}

    def validate(self) -> None:
        for name in ("max_params", "max_macs", "max_latency_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"constraints.{name}: must be 0 (no limit) or positive")


def measure(model: nn.Module, *, latency: bool) -> dict[str, float]:
    """What budgets and cost objectives are checked against; the model is not trained."""
    # Deferred: torch and torchvision, here with the model; reading a preset must not load them.
    from fmnist.models import count_macs, count_params
    from fmnist.models.measure import cpu_latency_ms

    measures: dict[str, float] = {"params": count_params(model), "macs": count_macs(model)}
    if latency:
        measures["latency_ms"] = cpu_latency_ms(model)
    return measures


def violations(constraints: Constraints, measures: dict[str, float]) -> dict[str, float]:
    """Relative excess per budget (``value / limit - 1``): positive is over budget. Relative,
    so that a sampler weighing total violation treats parameters and milliseconds alike."""
    return {name: measures[name] / limit - 1 for name, limit in constraints.limits().items()}


def check(trial: optuna.Trial, constraints: Constraints, measures: dict[str, float]) -> str:
    """Record the trial's constraint values; the reason it is over budget, or ""."""
    over = violations(constraints, measures)
    for name, value in over.items():
        trial.set_constraint(name, value)
    reason = "; ".join(
        f"{name} {fmt(measures[name])} > {fmt(limit)}"
        for name, limit in constraints.limits().items()
        if over[name] > 0
    )
    if reason:
        trial.set_user_attr(REJECTED, f"over budget: {reason}")
    return reason
