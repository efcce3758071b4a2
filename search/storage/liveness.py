"""Which RUNNING trials still have a live worker, for every storage alike.

A worker stamps its running trial every few seconds. The janitor never compares that stamp
with a clock: it remembers each stamp it reads and when, on its own monotonic clock, and a
trial whose stamp it has seen unchanged for the grace period lost its worker (SIGKILL, a lost
machine). So no two machines' clocks are ever compared (a worker's clock may be hours off),
and the rule is the same on every storage, the gRPC proxy included, which has no clock to
ask. The price: a janitor that has just started reaps nothing before one grace has passed.

A reaped trial is marked FAIL with that reason, and a retry is enqueued with the same
parameters, pointing back at it so the retry can resume from its last checkpoint and keep its
reported epochs. Optuna's own heartbeat covers RDB storages only; the Redis journal storage
needs this as well.

The grace must outlast the storage retry: during an outage the worker's stamps stop too, and
a worker that rides it out must not be reaped for it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from collections.abc import Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.errors import SearchError
from search.storage.retry import RETRY_S

HEARTBEAT_KEY = "fmnist:heartbeat"
WORKER_KEY = "fmnist:worker"  # system attr: which process runs the trial (``worker_id``)
RETRY_OF = "retry_of"  # user attr: the trial number this one retries
HEARTBEAT_S = 5.0
# Above the retry by one backoff step (10 s) after an outage, a beat, and room to spare.
GRACE_S = RETRY_S + 30.0
MAX_RETRIES = 3


def check_grace(grace_s: float, retry_s: float) -> None:
    """A grace within the storage retry would reap live trials after an outage they survive."""
    if grace_s <= retry_s:
        raise SearchError(
            f"--heartbeat-grace {grace_s:g} must be longer than --storage-retry {retry_s:g}: "
            "a worker riding out a storage outage stops stamping its trial meanwhile; raise "
            "the grace or lower the retry"
        )


def worker_id(pid: int | None = None) -> str:
    """The process ``pid`` (default: this one) on this machine, as a trial records its worker."""
    return f"{socket.gethostname()}/{pid or os.getpid()}"


def exited(pid: int, code: int, sent: str | None = None) -> tuple[str, str]:
    """(worker id, how it ended) of a worker process on this machine that exited with
    ``code``, after its parent sent it the signal named ``sent``: an item of the ``workers``
    that ``reap_orphans`` fails the trials of."""
    how = f"interrupted by {sent}; " if sent else ""
    return worker_id(pid), f"{how}its worker (pid {pid}) exited with code {code}"


def beat_interval(grace_s: float) -> float:
    """Three beats in every grace, at most one per ``HEARTBEAT_S``."""
    return min(HEARTBEAT_S, grace_s / 3)


class Heartbeat:
    """Stamps ``trial_id`` from a daemon thread while the trial runs. The stamp is the worker's
    wall time, for people reading the study; the janitor only looks for it to change. The
    trial first records its worker (``WORKER_KEY``), so a launcher that sees that process exit
    fails the trial at once (``reap_orphans``), without waiting out the grace."""

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
        self.storage.set_trial_system_attr(self.trial_id, WORKER_KEY, worker_id())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)


def cut_and_waiting(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Trials a timeout cut (PRUNED with ``stopped_by = "timeout"``, not by the pruner) that
    no trial of ``trials`` continues: ``auto`` queues a continuation of each (all trials
    given), and each keeps its checkpoint until a continuation has finished (finished given)."""
    continued = {t.user_attrs.get(RETRY_OF) for t in trials}
    return [
        t
        for t in trials
        if t.state == TrialState.PRUNED
        and t.user_attrs.get("stopped_by") == "timeout"
        and t.number not in continued
    ]


def retry_chain(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> list[int]:
    """Numbers of the trials ``trial`` retries, newest first."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    chain, current = [], trial.user_attrs.get(RETRY_OF)
    while current is not None and current not in chain:
        chain.append(current)
        current = by_number[current].user_attrs.get(RETRY_OF) if current in by_number else None
    return chain


# Per study object: trial id -> (the stamp last read, time.monotonic() when it was first read).
_SEEN: weakref.WeakKeyDictionary[optuna.Study, dict[int, tuple[object, float]]] = (
    weakref.WeakKeyDictionary()
)


def stale(study: optuna.Study, grace_s: float = GRACE_S) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials whose stamp this process has read unchanged for ``grace_s`` seconds."""
    now, seen = time.monotonic(), _SEEN.setdefault(study, {})
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    current = {}
    for t in running:
        stamp = t.system_attrs.get(HEARTBEAT_KEY)
        last = seen.get(t._trial_id)
        current[t._trial_id] = last if last is not None and last[0] == stamp else (stamp, now)
    seen.clear()
    seen.update(current)  # trials no longer running are forgotten
    return [t for t in running if now - current[t._trial_id][1] >= grace_s]


def reap_stale(
    study: optuna.Study,
    grace_s: float = GRACE_S,
    *,
    fence: Callable[[], None] | None = None,
) -> list[int]:
    """Fail RUNNING trials without a new heartbeat for ``grace_s`` and enqueue their retries.
    Call it under the study's claim lease, ``fence`` being the lease's, so that two janitors
    never reap the same trial; a trial that finished meanwhile is left as it is."""
    lost = stale(study, grace_s)
    now, seen = time.monotonic(), _SEEN.get(study, {})
    silent = {t._trial_id: now - seen[t._trial_id][1] for t in lost}
    reasons = [(t, f"worker lost: no heartbeat for {silent[t._trial_id]:.0f}s") for t in lost]
    return _reap(study, reasons, fence)


def reap_orphans(
    study: optuna.Study,
    workers: dict[str, str],
    *,
    fence: Callable[[], None] | None = None,
) -> list[int]:
    """Fail the RUNNING trials whose worker (``WORKER_KEY``) is a key of ``workers``, processes
    known to have exited, each value saying how, and enqueue their retries: a worker that
    died without ending its trial (killed, or its last write cut off) need not wait out the
    grace. Under the claim lease, as ``reap_stale``."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    lost = [
        (t, f"worker lost: {workers[w]}")
        for t in running
        if (w := t.system_attrs.get(WORKER_KEY)) in workers
    ]
    return _reap(study, lost, fence)


def _reap(
    study: optuna.Study,
    lost: list[tuple[optuna.trial.FrozenTrial, str]],
    fence: Callable[[], None] | None,
) -> list[int]:
    """Each trial of ``lost`` FAIL with its reason and its retry queued, unless it finished."""
    reaped = []
    for t, reason in lost:
        if fence:
            fence()
        try:
            study._storage.set_trial_user_attr(t._trial_id, "fail_reason", reason)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # its worker told its result a moment ago
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
