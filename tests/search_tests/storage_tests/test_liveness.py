"""Heartbeats and stale-trial reaping on every storage backend: a trial is stale when the
janitor has seen its stamp unchanged for the grace, on the janitor's own clock."""

from __future__ import annotations

import re
import time

import optuna
from optuna.trial import TrialState

from search.storage import open_storage
from search.storage.claim import reap_exited
from search.storage.liveness import (
    HEARTBEAT_KEY,
    RETRY_OF,
    WORKER_KEY,
    Heartbeat,
    exited,
    reap_stale,
    retry_chain,
    stale,
    worker_id,
)

GRACE_S = 0.3


def running_trial(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    beat(study, trial, time.time())
    return trial


def beat(study: optuna.Study, trial: optuna.Trial, stamp: float) -> None:
    study._storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_KEY, stamp)


def test_a_trial_whose_stamp_stopped_is_failed_and_retried(
    storage_url: str, study_name: str
) -> None:
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    lost, alive = running_trial(study), running_trial(study)
    assert reap_stale(study, grace_s=GRACE_S) == []  # first sight: nothing judged yet
    time.sleep(GRACE_S + 0.1)
    beat(study, alive, time.time())
    assert reap_stale(study, grace_s=GRACE_S) == [lost.number]
    beat(study, alive, time.time())
    assert reap_stale(study, grace_s=GRACE_S) == []  # reaped once only

    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[lost.number].state == TrialState.FAIL
    reason = by_number[lost.number].user_attrs["fail_reason"]
    assert re.fullmatch(r"worker lost: no heartbeat for \d+s", reason), reason
    assert by_number[alive.number].state == TrialState.RUNNING
    (queued,) = [t for t in by_number.values() if t.state == TrialState.WAITING]
    assert queued.user_attrs[RETRY_OF] == lost.number

    retry = study.ask()  # the queued retry comes first, with the lost trial's parameters
    assert retry.number == queued.number
    assert retry.suggest_float("lr", 1e-4, 1e-1, log=True) == by_number[lost.number].params["lr"]
    assert retry_chain(study, study.get_trials()[retry.number]) == [lost.number]


def test_a_heartbeat_keeps_its_trial_fresh(storage_url: str, study_name: str) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name=study_name, storage=storage)
    trial = study.ask()
    with Heartbeat(storage, trial._trial_id, interval_s=0.05):
        for _ in range(3):  # past the grace (a second, for beats on a loaded machine)
            assert stale(study, grace_s=1.0) == []
            time.sleep(0.4)
        assert reap_stale(study, grace_s=1.0) == []


def test_a_launcher_fails_the_trials_of_its_exited_worker_at_once(
    storage_url: str, study_name: str
) -> None:
    """A worker records itself on its trial; once its launcher sees it exit, the trial it left
    RUNNING is failed with how it ended and retried, without a grace; another worker's running
    trial and a finished trial of the dead worker's stay as they are."""
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name=study_name, storage=storage)
    dead, alive, told = study.ask(), study.ask(), study.ask()
    for trial in (dead, alive, told):
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    with Heartbeat(storage, alive._trial_id, interval_s=60):  # records this process
        pass
    for trial in (dead, told):
        storage.set_trial_system_attr(trial._trial_id, WORKER_KEY, worker_id(4_000_000))
    study.tell(told, 0.5)
    ended = {worker_id(4_000_000): "its worker (pid 4000000) exited with code -9"}
    assert dict([exited(4_000_000, -9)]) == ended  # as the launcher and a Ray actor say it
    assert exited(4_000_000, 1, "SIGTERM")[1] == (
        "interrupted by SIGTERM; its worker (pid 4000000) exited with code 1"
    )

    assert reap_exited(study, storage_url, ended, retry_s=5) == [dead.number]
    assert reap_exited(study, storage_url, ended, retry_s=5) == []  # once only

    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[alive.number].system_attrs[WORKER_KEY] == worker_id()
    assert by_number[alive.number].state == TrialState.RUNNING
    assert by_number[told.number].state == TrialState.COMPLETE
    assert by_number[dead.number].state == TrialState.FAIL
    assert by_number[dead.number].user_attrs["fail_reason"] == (
        "worker lost: its worker (pid 4000000) exited with code -9"
    )
    (queued,) = [t for t in by_number.values() if t.state == TrialState.WAITING]
    assert queued.user_attrs[RETRY_OF] == dead.number


def test_a_worker_whose_clock_is_an_hour_behind_is_not_reaped(
    storage_url: str, study_name: str
) -> None:
    """The stamps a worker on a skewed clock writes: an hour old by the janitor's clock, and
    changing. Judged by its age, it would be reaped at once; judged by change, only once it
    stops."""
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    trial = running_trial(study)
    for _ in range(4):
        beat(study, trial, time.time() - 3600)
        assert reap_stale(study, grace_s=GRACE_S) == []
        time.sleep(0.1)
    time.sleep(GRACE_S + 0.1)  # the worker is gone
    assert reap_stale(study, grace_s=GRACE_S) == [trial.number]
