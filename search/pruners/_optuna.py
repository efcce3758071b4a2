"""Optuna's pruners by name. Each builder takes the study's epoch budget and the preset's
options; epochs are the pruners' resource, reported once per epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

# Each pruner's options where a preset gives none; read by the builders and by the start
# line's estimate of what a pruner saves (search.pruners._savings).
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "hyperband": {"min_resource": 1, "reduction_factor": 3},
    "sha": {"min_resource": 1, "reduction_factor": 3},
    "median": {"n_startup_trials": 4, "n_warmup_steps": 0},
    "none": {},
}

OPTUNA_PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "hyperband": lambda epochs, **o: optuna.pruners.HyperbandPruner(
        **({"max_resource": epochs} | DEFAULT_OPTIONS["hyperband"] | o)
    ),
    "sha": lambda epochs, **o: optuna.pruners.SuccessiveHalvingPruner(
        **(DEFAULT_OPTIONS["sha"] | o)
    ),
    "median": lambda epochs, **o: optuna.pruners.MedianPruner(**(DEFAULT_OPTIONS["median"] | o)),
    "none": lambda epochs, **o: optuna.pruners.NopPruner(**o),
}
