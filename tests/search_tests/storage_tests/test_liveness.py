"""Heartbeats and stale-trial reaping on every storage backend."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from search.storage import open_storage
from search.storage.liveness import HEARTBEAT_KEY, RETRY_OF, Heartbeat, reap_stale, retry_chain


def running_trial(study: optuna.Study, beat_age_s: float) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    study._storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_KEY, time.time() - beat_age_s)
    return trial


def test_a_trial_without_a_recent_heartbeat_is_failed_and_retried(
    storage_url: str, study_name: str
) -> None:
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    lost, alive = running_trial(study, beat_age_s=120), running_trial(study, beat_age_s=1)
    assert reap_stale(study, grace_s=30) == [lost.number]
    assert reap_stale(study, grace_s=30) == []  # reaped once only

    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[lost.number].state == TrialState.FAIL
    assert "no heartbeat for 12" in by_number[lost.number].user_attrs["fail_reason"]
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
        time.sleep(0.3)
    stamp = study.get_trials()[0].system_attrs[HEARTBEAT_KEY]
    assert time.time() - stamp < 5
    assert reap_stale(study, grace_s=30) == []
