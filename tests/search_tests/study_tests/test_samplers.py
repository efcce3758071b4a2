"""Every registered sampler builds from its name and drives a small study; a seed repeats it."""

from __future__ import annotations

import optuna
import pytest

from search.study.samplers import SAMPLERS, make_sampler

# Options that make each model-based sampler leave random sampling after two trials, so the
# six trials below go through its model.
EARLY = {
    "tpe": {"n_startup_trials": 2},
    "gp": {"n_startup_trials": 2},
    "cmaes": {"n_startup_trials": 2},
    "nsga2": {"population_size": 2},
}


def sampled(name: str, seed: int, directions: list[str]) -> list[dict[str, float]]:
    """The parameters ``name`` proposes for six trials of a two-parameter study."""
    sampler = make_sampler(name, seed, EARLY.get(name, {}))
    study = optuna.create_study(directions=directions, sampler=sampler)

    def objective(trial: optuna.Trial):
        x, y = trial.suggest_float("x", -2, 2), trial.suggest_int("y", 0, 8)
        return (x**2 + y) if len(directions) == 1 else (x**2, y)

    study.optimize(objective, n_trials=6)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 6
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_sampler_runs_a_study_and_repeats_under_its_seed(name: str) -> None:
    directions = ["minimize", "minimize"] if name == "nsga2" else ["minimize"]
    first = sampled(name, 0, directions)
    assert all(-2 <= p["x"] <= 2 and 0 <= p["y"] <= 8 for p in first)
    assert sampled(name, 0, directions) == first
    assert len({p["x"] for p in first}) > 1  # it does move through the space


def test_an_unknown_sampler_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="sampler.name: unknown sampler 'grid'") as e:
        make_sampler("grid", 0, {})
    assert all(name in str(e.value) for name in SAMPLERS)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_an_option_a_sampler_lacks_is_named(name: str) -> None:
    with pytest.raises(ValueError, match=f"sampler.options: {name} sampler rejects"):
        make_sampler(name, 0, {"no_such_option": 1})
