"""A study's trials: the states a trial records beyond Optuna's (rejected over budget, its
accuracy curve) and the questions asked of them, in one place for every room that asks them:
which trials count, which is best, what each learned per epoch and what pruning saved.
Torch-free, below both the study and its storage: the claim lock counts trials with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.pruners import CURVE
from spaces.dims import Categorical, Float, Int

REJECTED = "rejected"  # trial user attribute: why the config was refused before training
# Consecutive rejections after which a worker gives up: the budgets leave (almost) nothing.
REJECTIONS_IN_A_ROW = 200


def was_rejected(trial: FrozenTrial) -> bool:
    """Refused over the study's budget before it trained (``search.study.constraints``)."""
    return REJECTED in trial.user_attrs


def trained(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The finished (complete or pruned) trials that trained: what ``n_trials`` counts, so a
    config rejected over budget is left out."""
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    return [t for t in trials if t.state in done and not was_rejected(t)]


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards ``n_trials``."""
    return len(trained(study.get_trials(deepcopy=False)))


def started_count(study: optuna.Study) -> int:
    """Trials past WAITING: those a sampler drew for (or a queue gave) so far."""
    return sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))


def rejected_in_a_row(trials: Sequence[FrozenTrial]) -> int:
    """Rejections among the newest finished trials, up to the first trained one."""
    count = 0
    for trial in sorted(trials, key=lambda t: t.number, reverse=True):
        if not trial.state.is_finished():
            continue
        if not was_rejected(trial):
            break
        count += 1
    return count


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, most accurate first (a Pareto study's first value is the accuracy)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: t.values[0], reverse=True)


def epoch_accuracies(trial: FrozenTrial) -> dict[int, float]:
    """Validation accuracy per epoch, single-objective (reported) or Pareto (recorded)."""
    if trial.intermediate_values:
        return dict(trial.intermediate_values)
    return dict(enumerate(trial.user_attrs.get(CURVE, [])))


def pruning_figures(study: optuna.Study) -> dict[str, int]:
    """Epochs trained against the epochs the same trials would have trained unpruned; configs
    rejected over budget (never trained) are counted apart."""
    budget = int(study.user_attrs.get("epochs", 0))
    every = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    finished = trained(every)
    return {
        "trials": len(finished),
        "pruned": sum(t.state == TrialState.PRUNED for t in finished),
        "epochs_trained": sum(len(epoch_accuracies(t)) for t in finished),
        "epochs_without_pruning": budget * len(finished),
        "rejected": len(every) - len(finished),
    }


def trial_sample(trial: optuna.Trial, dims: dict[str, Any], fixed: dict[str, Any]):
    """The ``Sample`` a space's ``build`` calls, backed by Optuna's suggest API. Torch-free,
    so a process that only samples (the scale simulator's workers) imports no torch."""

    def sample(name: str):
        if name in fixed:
            return fixed[name]
        d = dims[name]
        if isinstance(d, Categorical):
            return trial.suggest_categorical(name, list(d.choices))
        if isinstance(d, Int):
            return trial.suggest_int(name, d.low, d.high, log=d.log)
        if isinstance(d, Float):
            return trial.suggest_float(name, d.low, d.high, log=d.log)
        raise TypeError(f"unknown dimension {d!r}")

    return sample
