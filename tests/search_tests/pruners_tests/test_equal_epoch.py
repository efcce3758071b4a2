"""The equal-epoch rule on its own: rungs, peers, and the curve a Pareto trial records."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.pruners import CURVE, EqualEpochHalving, record_accuracy
from search.trials import epoch_accuracies


def trial(number: int, curve: list[float], params: int, state=TrialState.PRUNED) -> FrozenTrial:
    values = [curve[-1], params] if state == TrialState.COMPLETE else None
    t = optuna.trial.create_trial(
        state=state, values=values, user_attrs={CURVE: curve, "params": params}
    )
    t.number = number
    return t


def test_rungs_are_geometric_and_below_the_budget() -> None:
    assert EqualEpochHalving(epochs=15, costs=["params"]).rungs == (1, 3, 9)
    assert EqualEpochHalving(epochs=9, costs=["params"]).rungs == (1, 3)
    assert EqualEpochHalving(epochs=20, costs=["params"], min_resource=2).rungs == (2, 6, 18)
    assert EqualEpochHalving(epochs=1, costs=["params"]).rungs == ()


def test_a_trial_must_be_in_the_top_fraction_of_no_larger_peers() -> None:
    rule = EqualEpochHalving(epochs=9, costs=["params"], reduction_factor=3)
    peers = [trial(0, [0.5, 0.6, 0.7], 1000), trial(1, [0.4, 0.5, 0.6], 1000)]
    kw = {"cost": (1000,), "epochs_done": 3, "trials": peers}
    assert rule.stops(2, accuracy=0.65, **kw)  # second of three at epoch 3
    assert not rule.stops(2, accuracy=0.75, **kw)  # best of three
    assert not rule.stops(2, accuracy=0.70, **kw)  # a tie with the bar goes on


def test_larger_peers_do_not_count_so_the_small_end_of_the_front_survives() -> None:
    rule = EqualEpochHalving(epochs=9, costs=["params"], reduction_factor=3)
    bigger = [trial(0, [0.9], 5000), trial(1, [0.9], 5000)]
    assert not rule.stops(2, accuracy=0.1, cost=(1000,), epochs_done=1, trials=bigger)
    assert rule.stops(2, accuracy=0.1, cost=(5000,), epochs_done=1, trials=bigger)


def test_too_few_peers_stop_nothing() -> None:
    rule = EqualEpochHalving(epochs=9, costs=["params"], reduction_factor=3)  # min_peers 2
    one = [trial(0, [0.9], 1000)]
    assert not rule.stops(1, accuracy=0.1, cost=(1000,), epochs_done=1, trials=one)


def test_failed_trials_and_trials_short_of_the_rung_are_not_peers() -> None:
    rule = EqualEpochHalving(epochs=9, costs=["params"], reduction_factor=2, min_peers=1)
    others = [trial(0, [0.9, 0.9], 1000, TrialState.FAIL), trial(1, [0.9], 1000)]
    assert not rule.stops(2, accuracy=0.1, cost=(1000,), epochs_done=2, trials=others)


def test_record_accuracy_reports_one_objective_and_keeps_a_curve_for_several() -> None:
    single = optuna.create_study(direction="maximize").ask()
    record_accuracy(single, 0.5, 0)
    assert single.study.trials[0].intermediate_values == {0: 0.5}

    pareto = optuna.create_study(directions=["maximize", "minimize"]).ask()
    for epoch, acc in [(0, 0.5), (1, 0.6), (1, 0.9)]:  # a second value for epoch 1 is ignored
        record_accuracy(pareto, acc, epoch)
    frozen = pareto.study.trials[0]
    assert frozen.user_attrs[CURVE] == [0.5, 0.6] and frozen.intermediate_values == {}
    assert epoch_accuracies(frozen) == {0: 0.5, 1: 0.6}
