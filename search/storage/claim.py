"""Claiming a trial under the study's claim lease, so K workers on one study, on one machine or
many, stop at exactly ``target`` finished trials, and one janitor reaps trials whose worker
died (``search.storage.liveness``). The lease is held for a slot reservation only: a few
cached reads and one insert, whatever the size of the study.

The lease (``search.storage.lease``) is a record in the storage with a deadline on the
storage's clock and a fencing token, on every storage kind; through a ``grpc://`` storage
proxy, the proxy takes the database's lease for the worker (``search.storage.proxy`` serves
it; ``proxy_lock`` here is the worker's side). A holder that stops stalls the others for at
most its lease; one that wakes after losing it hands its reservation back."""

from __future__ import annotations

import contextlib
import queue
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.errors import SearchError
from search.storage.lease import (
    HOLDER,
    LEASE_S,
    Busy,
    Lease,
    LeaseLost,
    lease_key,
    lease_store,
)
from search.storage.liveness import GRACE_S, WORKER_KEY, reap_orphans, reap_stale, stale
from search.storage.open import DEFAULT_URL, grpc_address, safe_url, scheme
from search.storage.retry import RETRY_S, StorageLost, transient
from search.trials import REJECTIONS_IN_A_ROW, rejected_in_a_row, trained

T = TypeVar("T")
# The claim lease through a storage proxy (``search.storage.proxy`` serves it): the method, the
# worker's messages after the first (which names the study and the lease's seconds), and the
# proxy's answers; ``busy`` is followed by who holds it.
LOCK_METHOD = "/fmnist_search.ClaimLock/Hold"
FENCE = b"fence"
BUSY, HELD, LOST = b"busy", b"held", b"lost"
# Both ends of a proxy's streams: a peer that vanished without closing its connection is
# noticed within about 15 s (keepalive pings go unanswered), and pings are never refused.
KEEPALIVE = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
]


@dataclass(frozen=True)
class Claim:
    """What a worker got: a ``trial`` to run; else ``done`` (the study holds its trials) or,
    neither, wait (enough are in flight; one may still fail and need a retry)."""

    trial: optuna.Trial | None = None
    done: bool = False


def claim(
    study: optuna.Study,
    target: int,
    url: str | None,
    *,
    retry_s: float = RETRY_S,
    lease_s: float = LEASE_S,
) -> Claim:
    """Start a trial if the study is short of ``target``. The study is read before the lease
    is taken; under it only the trials created since are counted and the slot is reserved (a
    RUNNING trial, which the next claim counts); the sampler runs after it. A claim whose
    lease another worker took meanwhile reserves nothing: wait and claim again."""
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)  # the cache's delta
    if rejected_in_a_row(trials) >= REJECTIONS_IN_A_ROW:
        raise SearchError(
            f"the last {REJECTIONS_IN_A_ROW} configs were all over the [constraints] "
            "budget; loosen the budget or narrow [ranges] to smaller networks"
        )
    try:
        with claim_lock(url, study.study_name, retry_s, lease_s=lease_s) as lease:
            reserved = _reserve(study, target, lease, trials)
    except LeaseLost:
        return Claim()
    if isinstance(reserved, Claim):
        return reserved
    try:
        return Claim(trial=optuna.Trial(study, reserved))  # the sampler's relative draw
    except Exception as e:
        fail_unstarted(study, reserved, e)
        raise


def _reserve(study: optuna.Study, target: int, lease, trials: list) -> Claim | int:
    """The id of a trial now RUNNING for this worker (an enqueued one first), or the Claim
    that says why there is none.

    ``trials`` was read before the lease, so it may be stale, but only towards counting too
    many: a trial leaves RUNNING for a finished or failed state, or back to WAITING, and
    trials are created under the lease (counted here as in flight by their numbers) or
    enqueued. Only a pop, WAITING to RUNNING, also happens under the lease, so a study
    with WAITING trials is read afresh here (the start of a run, a retry, a handed-back
    slot). The fence after the write is what keeps counts exact: a holder that stalled past
    its lease while another counted and reserved puts its trial back as WAITING."""
    if any(t.state == TrialState.WAITING for t in trials):
        trials, newer = study._storage.get_all_trials(study._study_id, deepcopy=False), 0
    else:
        newer = created_since(study, max((t.number for t in trials), default=-1) + 1)
    finished = len(trained(trials))
    if finished >= target:
        return Claim(done=True)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if finished + running + newer >= target:
        return Claim()
    trial_id = _pop_waiting(study, trials)
    if trial_id is None:
        trial_id = study._storage.create_new_trial(study._study_id)
    try:
        lease.fence()
    except LeaseLost:
        study._storage.set_trial_state_values(trial_id, TrialState.WAITING)
        raise
    return trial_id


def created_since(study: optuna.Study, number: int) -> int:
    """How many trials the study holds from ``number`` on (numbers are dense): a few point
    reads, doubling then halving, however many there are."""

    def exists(n: int) -> bool:
        try:
            study._storage.get_trial_id_from_study_id_trial_number(study._study_id, n)
        except KeyError:
            return False
        return True

    if not exists(number):
        return 0
    low, high = 1, 2  # trials number..number+low-1 exist; number+high-1 is unknown
    while exists(number + high - 1):
        low, high = high, high * 2
    while high - low > 1:  # number+high-1 does not exist
        mid = (low + high) // 2
        low, high = (mid, high) if exists(number + mid - 1) else (low, mid)
    return low


def _pop_waiting(study: optuna.Study, trials: list) -> int | None:
    """An enqueued trial of ``trials`` (read under the lease) set RUNNING, first come first."""
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != TrialState.WAITING:
            continue
        with contextlib.suppress(UpdateFinishedTrialError):  # as Optuna's own pop
            if study._storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                return t._trial_id
    return None


def fail_unstarted(study: optuna.Study, trial_id: int, e: BaseException) -> None:
    """A trial that failed before its training started (the sampler rejected a value, a
    config did not build): FAIL with one line, never left RUNNING."""
    reason = f"{type(e).__name__}: {e}".splitlines()[0][:500]
    study._storage.set_trial_user_attr(trial_id, "fail_reason", reason)
    study._storage.set_trial_state_values(trial_id, TrialState.FAIL)


def tidy(
    study: optuna.Study, url: str | None, *, grace_s: float = GRACE_S, retry_s: float = RETRY_S
) -> list[int]:
    """The janitor's round (the launcher's, the Ray driver's or a lone worker's, never each
    of K workers'): reap trials whose worker died, under the claim lease only when there is
    one, so that two janitors never reap the same trial. Returns the reaped numbers."""
    if not stale(study, grace_s):
        return []
    try:
        with claim_lock(url, study.study_name, retry_s) as lease:
            return reap_stale(study, grace_s, fence=lease.fence)
    except LeaseLost:
        return []  # another janitor holds it now; the reaps made before it took over stand


def reap_exited(
    study: optuna.Study, url: str | None, workers: dict[str, str], *, retry_s: float = RETRY_S
) -> list[int]:
    """The launcher's reap of its own workers that exited (``workers``: worker id -> how it
    ended, ``search.storage.liveness.reap_orphans``), under the claim lease as ``tidy``'s."""
    if not workers:  # nothing exited: no read at all (the launcher asks every second)
        return []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not any(t.system_attrs.get(WORKER_KEY) in workers for t in running):
        return []
    try:
        with claim_lock(url, study.study_name, retry_s) as lease:
            return reap_orphans(study, workers, fence=lease.fence)
    except LeaseLost:
        return []  # another janitor holds it now: the grace reaps what is left


@contextlib.contextmanager
def claim_lock(
    url: str | None, study_name: str, retry_s: float = RETRY_S, *, lease_s: float = LEASE_S
) -> Iterator[Lease | ProxyLease]:
    """The study's claim lease, held while the block runs (it serialises "is the study short
    of trials? then start one" across every worker of a study). Waiting for it, and riding out
    a lost connection meanwhile, lasts at most ``retry_s`` seconds; then one line says what
    was waited for. Yields the lease: ``fence()`` it after a write that must count."""
    url = url or DEFAULT_URL
    if scheme(url) == "grpc":
        with proxy_lock(url, study_name, retry_s, lease_s=lease_s) as lease:
            yield lease
        return
    key = lease_key(study_name)

    def take() -> int | Busy:  # the store is made in the wait too: making it connects
        return lease_store(url).take(key, HOLDER, lease_s)

    token = wait_for(take, study_name, safe_url(url), retry_s)
    store = lease_store(url)
    try:
        yield Lease(store, key, token, lease_s, retry_s, safe_url(url))
    finally:
        with contextlib.suppress(Exception):  # unreleased, it expires at its deadline
            store.release(key, token)


def wait_for(take: Callable[[], T | Busy], study_name: str, label: str, wait_s: float) -> T:
    """``take()`` until it returns something other than ``Busy``, for at most ``wait_s``
    seconds, through lost connections; jitter keeps K waiting workers from polling in step."""
    deadline, delay = time.monotonic() + wait_s, 0.02
    while True:
        try:
            got = take()
        except Exception as e:
            if not transient(e):
                raise
            got = e
        if not isinstance(got, Busy | Exception):
            return got
        if time.monotonic() + delay > deadline:
            if isinstance(got, Busy):
                raise StorageLost(
                    f"waited {wait_s:g}s for the claim lease of study {study_name!r} on "
                    f"{label}, {got}; many workers on one study, or a janitor reaping many "
                    "trials: rerun, or raise --storage-retry"
                )
            raise StorageLost(
                f"storage {label} unreachable for {wait_s:g}s while claiming a trial; "
                f"finished trials are kept there: rerun `run` once it is back "
                f"({type(got).__name__})"
            )
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5 if isinstance(got, Busy) else 5.0)


@contextlib.contextmanager
def proxy_lock(
    url: str, study_name: str, retry_s: float = RETRY_S, *, lease_s: float = LEASE_S
) -> Iterator[ProxyLease]:
    """The study's claim lease through the proxy at ``url``: a ``Hold`` stream that the proxy
    answers ``held`` on, kept open while the block runs; each ``fence()`` renews the lease."""
    # grpcio is an optional extra (`fmnist-search[grpc]`): imported for a grpc:// storage only.
    import grpc

    host, port = grpc_address(url)
    with grpc.insecure_channel(f"{host}:{port}", options=KEEPALIVE) as channel:
        hold = channel.stream_stream(LOCK_METHOD)
        lease = wait_for(
            lambda: ProxyLease.open(hold, f"{study_name}\t{lease_s}"), study_name, url, retry_s
        )
        try:
            yield lease
        finally:
            lease.close()


class ProxyLease:
    """A worker's end of a ``Hold`` stream: its messages go out through a queue."""

    def __init__(self, hold, first: str) -> None:
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._out.put(first.encode())
        self._replies = hold(iter(self._out.get, None))

    @classmethod
    def open(cls, hold, first: str) -> ProxyLease | Busy:
        lease = cls(hold, first)
        try:
            answer = next(lease._replies)
        except BaseException:
            lease.close()
            raise
        if answer == HELD:
            return lease
        lease.close()
        holder, left = answer.decode().split("\t", 1)[1].rsplit("\t", 1)
        return Busy(holder, float(left))

    def fence(self) -> None:
        self._out.put(FENCE)
        try:
            answer = next(self._replies)
        except Exception:  # the stream broke: the proxy released the lease, or it expires
            answer = LOST
        if answer != HELD:
            raise LeaseLost("the proxy's claim lease was taken by another holder, or dropped")

    def close(self) -> None:
        self._out.put(None)
        with contextlib.suppress(Exception):  # the stream may already have failed
            for _ in self._replies:
                pass
