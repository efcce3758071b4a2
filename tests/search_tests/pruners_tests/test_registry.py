"""Every registered pruner name builds and stops trials sensibly in a study of fake trials:
good trials (high accuracy every epoch) alternate with clearly worse ones."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from search.pruners import EQUAL_EPOCH, EqualEpochHalving, make, names, record_accuracy

EPOCHS, TRIALS = 9, 16


def accuracy(number: int, epoch: int) -> float:
    """Even trials learn well, odd ones barely."""
    return (0.8 if number % 2 == 0 else 0.1) + 0.01 * epoch


def bad(number: int) -> bool:
    return number % 2 == 1


# Which odd (bad) trials each pruner must stop; good trials are never stopped.
MUST_STOP = {
    "none": lambda n: False,
    # After its 4 startup trials, a bad trial is below the median at its first epoch.
    "median": lambda n: n >= 4,
    "sha": None,  # some of them
    "hyperband": None,
}


def single_objective(name: str) -> optuna.Study:
    pruning = make(name, epochs=EPOCHS, costs=(), options={})
    assert isinstance(pruning.optuna, optuna.pruners.BasePruner) and pruning.rule is None
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(0), pruner=pruning.optuna
    )

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        for epoch in range(EPOCHS):
            trial.report(accuracy(trial.number, epoch), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy(trial.number, EPOCHS - 1)

    study.optimize(objective, n_trials=TRIALS)
    return study


def test_every_single_objective_pruner_has_an_expectation() -> None:
    assert set(names()) == set(MUST_STOP)


@pytest.mark.parametrize("name", names())
def test_a_pruner_stops_only_worse_trials(name: str) -> None:
    study = single_objective(name)
    states = {t.number: t.state for t in study.trials}
    assert set(states.values()) <= {TrialState.COMPLETE, TrialState.PRUNED}
    stopped = {n for n, s in states.items() if s == TrialState.PRUNED}
    assert all(bad(n) for n in stopped), stopped
    if (must := MUST_STOP[name]) is not None:
        assert stopped == {n for n in states if bad(n) and must(n)}
    else:
        assert stopped, f"{name} stopped none of the worse trials"


def pareto_study(name: str, cost: int = 1000) -> tuple[optuna.Study, EqualEpochHalving | None]:
    """A two-objective study (accuracy up, parameters down) whose trials all cost the same, run
    as the objective runs a Pareto trial: the rule, not Optuna, stops it."""
    pruning = make(name, epochs=EPOCHS, costs=("params",), options={})
    assert isinstance(pruning.optuna, optuna.pruners.NopPruner)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for _ in range(TRIALS):
        trial = study.ask()
        trial.set_user_attr("params", cost)
        for epoch in range(EPOCHS):
            record_accuracy(trial, accuracy(trial.number, epoch), epoch)
            if pruning.rule is not None and pruning.rule.should_stop(trial, epoch):
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, [accuracy(trial.number, EPOCHS - 1), cost])
    return study, pruning.rule


@pytest.mark.parametrize("name", names(pareto=True))
def test_a_pareto_pruner_stops_only_worse_trials(name: str) -> None:
    study, rule = pareto_study(name)
    stopped = {t.number for t in study.trials if t.state == TrialState.PRUNED}
    assert all(bad(n) for n in stopped), stopped
    if name == "none":
        assert rule is None and not stopped
    else:
        assert name == EQUAL_EPOCH and rule is not None and rule.rungs == (1, 3)
        # Once two peers have reached the first rung, every worse trial is stopped there.
        assert stopped == {n for n in range(TRIALS) if bad(n) and n >= 2}
        for t in study.trials:
            if t.number in stopped:
                assert len(t.user_attrs["val_acc_curve"]) == 1


def test_the_pareto_rule_is_refused_for_one_objective_and_sha_for_several() -> None:
    with pytest.raises(ValueError, match=f"{EQUAL_EPOCH!r} is for Pareto studies"):
        make(EQUAL_EPOCH, epochs=EPOCHS, costs=(), options={})
    with pytest.raises(ValueError, match=f'write name = "{EQUAL_EPOCH}"'):
        make("sha", epochs=EPOCHS, costs=("params",), options={})


@pytest.mark.parametrize("pareto", [False, True])
def test_an_unknown_option_is_named(pareto: bool) -> None:
    for name in names(pareto=pareto):
        if pareto and name == "none":
            continue  # a Pareto study's 'none' builds no rule to take options
        with pytest.raises(ValueError, match="pruner.options"):
            make(name, epochs=EPOCHS, costs=("params",) if pareto else (), options={"x": 1})
