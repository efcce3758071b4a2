"""Optuna's pruners by name. Each builder takes the study's epoch budget and the preset's
options; epochs are the pruners' resource, reported once per epoch."""

from __future__ import annotations

from collections.abc import Callable

import optuna

OPTUNA_PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "hyperband": lambda epochs, **o: optuna.pruners.HyperbandPruner(
        **({"min_resource": 1, "max_resource": epochs, "reduction_factor": 3} | o)
    ),
    "sha": lambda epochs, **o: optuna.pruners.SuccessiveHalvingPruner(
        **({"min_resource": 1, "reduction_factor": 3} | o)
    ),
    "median": lambda epochs, **o: optuna.pruners.MedianPruner(
        **({"n_startup_trials": 4, "n_warmup_steps": 0} | o)
    ),
    "none": lambda epochs, **o: optuna.pruners.NopPruner(**o),
}
