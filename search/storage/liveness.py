"""Which RUNNING trials still have a live worker, for every storage alike.

A worker stamps its running trial every ``HEARTBEAT_S`` seconds. A trial whose stamp is older
than the grace period lost its worker (SIGKILL, a lost machine): it is marked FAIL with that
reason, and a retry is enqueued with the same parameters, pointing back at it so the retry can
resume from its last checkpoint and keep its reported epochs. Optuna's own heartbeat covers
RDB storages only; the Redis journal storage needs this as well.
"""

from __future__ import annotations

import threading
import time

import optuna
from optuna.trial import TrialState

HEARTBEAT_KEY = "fmnist:heartbeat"
RETRY_OF = "retry_of"  # user attr: the trial number this one retries
HEARTBEAT_S = 5.0
GRACE_S = 30.0
MAX_RETRIES = 3


class Heartbeat:
    """Stamps ``trial_id`` from a daemon thread while the trial runs."""

    def __init__(
        self, storage: optuna.storages.BaseStorage, trial_id: int, interval_s: float = HEARTBEAT_S
    ) -> None:
        self.storage, self.trial_id, self.interval_s = storage, trial_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.storage.set_trial_system_attr(self.trial_id, HEARTBEAT_KEY, time.time())
            except Exception:
                pass  # the main thread meets the same storage error and handles it
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)


def retry_chain(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> list[int]:
    """Numbers of the trials ``trial`` retries, newest first."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    chain, current = [], trial.user_attrs.get(RETRY_OF)
    while current is not None and current not in chain:
        chain.append(current)
        current = by_number[current].user_attrs.get(RETRY_OF) if current in by_number else None
    return chain


def stale(study: optuna.Study, grace_s: float = GRACE_S) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials without a heartbeat for ``grace_s`` seconds."""
    now, out = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = t.system_attrs.get(HEARTBEAT_KEY)
        if last is None:
            last = t.datetime_start.timestamp() if t.datetime_start else now
        if now - last >= grace_s:
            out.append(t)
    return out


def reap_stale(study: optuna.Study, grace_s: float = GRACE_S) -> list[int]:
    """Fail RUNNING trials without a recent heartbeat and enqueue their retries. Call it under
    the study's claim lock so that two janitors never reap the same trial."""
    reaped = []
    for t in stale(study, grace_s):
        last = t.system_attrs.get(HEARTBEAT_KEY) or t.datetime_start.timestamp()
        study._storage.set_trial_user_attr(
            t._trial_id, "fail_reason", f"worker lost: no heartbeat for {time.time() - last:.0f}s"
        )
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        reaped.append(t.number)
        enqueue_retry(study, t)
    return reaped


def enqueue_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Queue a retry of a trial that ended without a result of its own (its worker died or
    was stopped): same parameters, resuming from its last checkpoint; False past
    ``MAX_RETRIES`` along its chain."""
    if len(retry_chain(study, trial)) >= MAX_RETRIES:
        return False
    study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
    return True
