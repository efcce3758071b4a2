"""Samplers by name. Each builder takes the study seed and the preset's options."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna

SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    # Multivariate TPE models the dependencies between parameters (width and LR, say);
    # constant_liar keeps parallel workers from proposing the same point.
    "tpe": lambda seed, **o: optuna.samplers.TPESampler(
        seed=seed, **({"multivariate": True, "constant_liar": True} | o)
    ),
    "random": lambda seed, **o: optuna.samplers.RandomSampler(seed=seed, **o),
    "cmaes": lambda seed, **o: optuna.samplers.CmaEsSampler(seed=seed, **o),
    "gp": lambda seed, **o: optuna.samplers.GPSampler(seed=seed, **o),
    # For Pareto studies; it learns from complete trials only, not from stopped or rejected ones.
    "nsga2": lambda seed, **o: optuna.samplers.NSGAIISampler(seed=seed, **o),
}


def make_sampler(name: str, seed: int, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise ValueError(f"sampler.name: unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    try:
        # A preset chose its options (TPE's `group`, say) knowingly; Optuna's notice that
        # one is experimental would repeat for every run and every worker.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return SAMPLERS[name](seed, **options)
    except TypeError as e:
        raise ValueError(f"sampler.options: {name} sampler rejects these options ({e})") from None
