"""The ledger's checks fail on a study that is wrong: each crafted fault below is caught, and
a clean study with a retried trial passes."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tests.reliability_tests.ledger import Ledger, audit

X = {"x": FloatDistribution(0, 1)}


def _trial(state: TrialState, x: float, **user_attrs) -> optuna.trial.FrozenTrial:
    value = x if state == TrialState.COMPLETE else None
    return create_trial(state=state, value=value, params={"x": x}, distributions=X,
                        user_attrs=user_attrs)  # fmt: skip


def study_of(*trials: optuna.trial.FrozenTrial, enqueue: tuple[float, ...] = ()) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for t in trials:
        study.add_trial(t)
    for x in enqueue:
        study.enqueue_trial({"x": x})
    return study


def finish_waiting(study: optuna.Study) -> None:
    """Claim every enqueued trial and complete it, as a worker would."""
    while study.get_trials(states=(TrialState.WAITING,)):
        trial = study.ask(X)
        study.tell(trial, trial.params["x"])


def test_a_clean_study_with_a_retried_trial_passes(tmp_path) -> None:
    died = _trial(TrialState.FAIL, 0.2, fail_reason="worker lost")
    study = study_of(_trial(TrialState.COMPLETE, 0.1), died, _trial(TrialState.PRUNED, 0.3))
    study.enqueue_trial({"x": 0.2}, user_attrs={"retry_of": 1})
    finish_waiting(study)
    found = audit(study.trials, asked=3)
    assert not any(found.values()), found
    row = Ledger("t").check(study.trials, backend="memory", asked=3, faults="1 worker lost")
    assert (row["finished"], row["failed"], row["lost"], row["duplicated"]) == (3, 1, 0, 0)


@pytest.mark.parametrize(
    ("fault", "asked", "before"),
    [
        ("missing", 4, None),
        ("beyond_asked", 2, None),
        ("changed_since_before", 3, {0: ({"x": 0.1}, [0.9])}),
        ("changed_since_before", 3, {7: ({"x": 0.1}, [0.1])}),
    ],
)
def test_counts_that_miss_the_target_fail(fault: str, asked: int, before) -> None:
    study = study_of(*(_trial(TrialState.COMPLETE, x) for x in (0.1, 0.2, 0.3)))
    found = audit(study.trials, asked=asked, before=before)
    assert found[fault] and not any(v for k, v in found.items() if k != fault), found
    with pytest.raises(AssertionError, match=fault):
        Ledger("t").check(study.trials, backend="memory", asked=asked, faults="", before=before)


def test_a_retry_chain_that_finished_twice_fails() -> None:
    died = _trial(TrialState.FAIL, 0.2, fail_reason="worker lost")
    study = study_of(died, _trial(TrialState.COMPLETE, 0.2, retry_of=0))
    study.add_trial(_trial(TrialState.COMPLETE, 0.2, retry_of=0))  # the same retry, twice
    found = audit(study.trials, asked=2)
    assert found["chains_finished_twice"] == [0]


def test_a_retry_of_a_trial_that_did_not_fail_fails() -> None:
    study = study_of(_trial(TrialState.COMPLETE, 0.2), _trial(TrialState.COMPLETE, 0.2, retry_of=0))
    found = audit(study.trials, asked=2)
    assert found["retries_of_unfailed"] == [1] and found["chains_finished_twice"] == [0]


def test_an_enqueued_config_finished_twice_fails() -> None:
    study = study_of(enqueue=(0.5, 0.5))  # a baseline enqueued by two workers
    finish_waiting(study)
    assert len(audit(study.trials, asked=2)["enqueued_finished_twice"]) == 1
    once = study_of(enqueue=(0.5, 0.6))
    finish_waiting(once)
    assert not any(audit(once.trials, asked=2).values())


@pytest.mark.parametrize("state", [TrialState.RUNNING, TrialState.WAITING])
def test_a_trial_left_running_or_waiting_fails(state: TrialState) -> None:
    study = study_of(_trial(TrialState.COMPLETE, 0.1))
    if state == TrialState.RUNNING:
        study.ask(X)
    else:
        study.enqueue_trial({"x": 0.4})
    found = audit(study.trials, asked=1)
    key = "left_running" if state == TrialState.RUNNING else "left_waiting"
    assert found[key] == [1]
    with pytest.raises(AssertionError, match=key):
        Ledger("t").check(study.trials, backend="memory", asked=1, faults="")
