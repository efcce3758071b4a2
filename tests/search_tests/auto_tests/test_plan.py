import math
import random

import optuna
import pytest

from fmnist.config import OptimConfig, RunConfig, stretch
from search.auto.pipeline import affordable
from search.auto.plan import (
    ALPHA,
    EXACT_PAIRS,
    RULES,
    Plan,
    chance,
    odds,
    short_long_pairs,
    spearman,
    split_for,
)


def test_rules_give_more_search_as_short_runs_rank_better() -> None:
    splits = [split_for(rho, 0.01) for rho in (-1.0, 0.0, 0.5, 0.9, 1.0)]
    searches = [s.search for s in splits]
    assert searches == sorted(searches) and searches[0] < searches[-1]
    assert split_for(None, None) == RULES[-1][1]  # unmeasured: the careful split
    for _, split in RULES:
        assert math.isclose(split.search + split.confirm + split.final, 1.0)


def test_a_correlation_luck_could_give_moves_no_split() -> None:
    """Three trials ranked alike at both lengths happen one time in six by chance: too few to
    trust short runs. Four ranked alike (one in 24) are enough; four nearly alike (0.8, one
    in six again) are not."""
    careful, trusting = RULES[-1][1], RULES[0][1]
    three = ([0.1, 0.2, 0.3], [0.3, 0.4, 0.5])
    assert spearman(*three) == 1.0 and chance(*three) == pytest.approx(1 / 6)
    assert split_for(spearman(*three), chance(*three)) == careful
    four = ([0.1, 0.2, 0.3, 0.4], [0.3, 0.4, 0.5, 0.6])
    assert chance(*four) == pytest.approx(1 / 24) and chance(*four) < ALPHA
    assert split_for(spearman(*four), chance(*four)) == trusting
    nearly = ([0.1, 0.2, 0.3, 0.4], [0.3, 0.5, 0.4, 0.6])
    assert spearman(*nearly) == pytest.approx(0.8) and chance(*nearly) == pytest.approx(4 / 24)
    assert split_for(spearman(*nearly), chance(*nearly)) == careful
    reversed_ = ([0.1, 0.2, 0.3], [0.5, 0.4, 0.3])
    assert chance(*reversed_) == 1.0  # one-sided: ranking backwards is no evidence
    assert chance([0.1, 0.2], [0.2, 0.3]) is None  # what spearman measures nothing of
    # Past EXACT_PAIRS a seeded sample of pairings: the same answer every time.
    rng = random.Random(0)
    xs = [rng.random() for _ in range(EXACT_PAIRS + 4)]
    ys = [x + rng.random() for x in xs]
    assert chance(xs, ys) == chance(xs, ys) < ALPHA
    assert odds(1 / 6) == "by chance 1 time in 6" and odds(None) == "its chance not measured"


def test_plan_round_trips_through_a_study() -> None:
    plan = Plan(budget_s=900, study="cpu", search_epochs=6, search_images=54000, probe_epoch_s=9)
    plan = plan.spend("start", 3.0).spend("search", 10.0).spend("search", 5.0)
    plan = Plan.from_dict(plan.to_dict() | {"split": split_for(0.8, 0.01).__dict__})
    study = optuna.create_study()
    study.set_user_attr("auto_plan", plan.to_dict())
    back = Plan.from_dict(study.user_attrs["auto_plan"])
    assert back == plan and back.total_spent == 18.0 and back.split == split_for(0.8, 0.01)


def test_short_long_pairs_come_from_complete_curves() -> None:
    study = optuna.create_study(direction="maximize")
    for first, last in ((0.5, 0.7), (0.6, 0.8), (0.4, 0.9)):
        trial = study.ask()
        trial.report(first, 0)
        trial.report(last, 1)
        study.tell(trial, last)
    one_epoch = study.ask()
    one_epoch.report(0.3, 0)
    study.tell(one_epoch, 0.3)
    assert short_long_pairs(study) == ([0.5, 0.6, 0.4], [0.7, 0.8, 0.9])


def test_stretch_keeps_the_schedule_shape() -> None:
    config = RunConfig(epochs=6, optim=OptimConfig(warmup_epochs=1.5, step_epochs=2))
    long = stretch(config, 24)
    assert long.epochs == 24
    assert long.optim.warmup_epochs == 6.0 and long.optim.step_epochs == 8
    assert stretch(long, 6) == config


def test_confirm_runs_two_or_more_or_none() -> None:
    """Confirming the best trial alone ranks nothing: a share that buys one run buys none,
    and its time goes to the final training."""
    study = optuna.create_study(direction="maximize")
    for seconds in (20.0, 10.0, None):  # measured epoch times; the third unmeasured
        trial = study.ask()
        if seconds is not None:
            trial.set_user_attr("epoch_seconds", [seconds, seconds + 1, seconds])
        study.tell(trial, 0.9)
    top = study.trials
    assert affordable(top, 12, 12 * 20 + 1, probe_s=5.0) == 0  # the best alone: none
    assert affordable(top, 12, 12 * 30, probe_s=5.0) == 2
    assert affordable(top, 12, 12 * 35, probe_s=5.0) == 3  # the probe's time for the third
    assert affordable(top[:1], 12, 1e9, probe_s=5.0) == 0  # one complete trial: nothing to rank


def test_a_cut_trial_s_continuation_is_given_the_epochs_it_lacks() -> None:
    """The search share after the split is at least what the queued continuations of cut
    trials need to finish (a 15-minute budget had cut its best trial twice and trained the
    recipe): the epochs each lacks at its own measured epoch time, the probe's where unmeasured."""
    from optuna.trial import TrialState

    from search.auto.pipeline import finishing_s
    from search.storage.liveness import enqueue_retry

    plan = Plan(budget_s=900, study="cpu", search_epochs=6, search_images=54000, probe_epoch_s=9)
    study = optuna.create_study(direction="maximize")
    assert finishing_s(study, plan) == 0.0
    for epochs, seconds in ((3, 28.0), (1, None)):  # cut at 3 of 6, measured; at 1, not
        trial = study.ask()
        for epoch in range(epochs):
            trial.report(0.9, epoch)
        if seconds is not None:
            trial.set_user_attr("epoch_seconds", [seconds] * epochs)
        trial.set_user_attr("stopped_by", "timeout")
        study.tell(trial, state=TrialState.PRUNED)
    done = study.ask()  # a complete trial lacks nothing
    study.tell(done, 0.8)
    for cut in study.trials[:2]:
        assert enqueue_retry(study, cut)
    assert finishing_s(study, plan) == 3 * 28.0 + 5 * 9
    study.tell(study.ask(), 0.9)  # the first continuation ran: only the second is waiting
    assert finishing_s(study, plan) == 5 * 9
