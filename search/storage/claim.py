"""Claiming a trial under the study's claim lock, so K workers on one study, on one machine or
many, stop at exactly ``target`` finished trials, and one janitor reaps trials whose worker
died (``search.storage.liveness``). The lock is held for a slot reservation only: a few
cached reads and one insert, whatever the size of the study.

The lock is a file lock beside a SQLite file, an advisory lock on PostgreSQL / MySQL, a lock
key on Redis; through a ``grpc://`` storage proxy, the proxy takes the database's lock for the
worker (``search.storage.proxy`` serves it; ``proxy_lock`` here is the worker's side)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from search.errors import SearchError
from search.storage.liveness import GRACE_S, reap_stale, stale
from search.storage.open import DEFAULT_URL, engine_kwargs, grpc_address, safe_url, scheme
from search.storage.retry import StorageLost, with_backoff
from search.trials import REJECTIONS_IN_A_ROW, rejected_in_a_row, trained

# The claim lock through a storage proxy (``search.storage.proxy`` serves it): the method and
# its two answers.
LOCK_METHOD = "/fmnist_search.ClaimLock/Hold"
BUSY, HELD = b"busy", b"held"
# A dead client's stream is noticed within this long even when its machine vanished without
# closing the connection (keepalive pings go unanswered).
KEEPALIVE = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
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
    retry_s: float = 120.0,
) -> Claim:
    """Start a trial if the study is short of ``target``. Under the lock only the slot is
    reserved (a RUNNING trial, which the next claim counts); the sampler runs outside it."""
    with claim_lock(url, study.study_name, retry_s):
        reserved = _reserve(study, target)
    if isinstance(reserved, Claim):
        return reserved
    try:
        return Claim(trial=optuna.Trial(study, reserved))  # the sampler's relative draw
    except Exception as e:
        fail_unstarted(study, reserved, e)
        raise


def _reserve(study: optuna.Study, target: int) -> Claim | int:
    """The id of a trial now RUNNING for this worker (an enqueued one first), or the Claim
    that says why there is none."""
    trials = study.get_trials(deepcopy=False)
    finished = len(trained(trials))
    if finished >= target:
        return Claim(done=True)
    if finished + sum(t.state == TrialState.RUNNING for t in trials) >= target:
        return Claim()
    if rejected_in_a_row(trials) >= REJECTIONS_IN_A_ROW:
        raise SearchError(
            f"the last {REJECTIONS_IN_A_ROW} configs were all over the [constraints] "
            "budget; loosen the budget or narrow [ranges] to smaller networks"
        )
    study._thread_local.cached_all_trials = None  # as study.ask(): read the storage afresh
    trial_id = study._pop_waiting_trial_id()
    return study._storage.create_new_trial(study._study_id) if trial_id is None else trial_id


def fail_unstarted(study: optuna.Study, trial_id: int, e: BaseException) -> None:
    """A trial that failed before its training started (the sampler rejected a value, a
    config did not build): FAIL with one line, never left RUNNING."""
    reason = f"{type(e).__name__}: {e}".splitlines()[0][:500]
    study._storage.set_trial_user_attr(trial_id, "fail_reason", reason)
    study._storage.set_trial_state_values(trial_id, TrialState.FAIL)


def tidy(study: optuna.Study, url: str | None, *, grace_s: float = GRACE_S, retry_s=120.0):
    """The janitor's round (the launcher's, the Ray driver's or a lone worker's, never each
    of K workers'): reap trials whose worker died, under the claim lock only when there is
    one, so that two janitors never reap the same trial. Returns the reaped numbers."""
    if not stale(study, grace_s):
        return []
    with claim_lock(url, study.study_name, retry_s):
        return reap_stale(study, grace_s)


@contextlib.contextmanager
def claim_lock(url: str | None, study_name: str, retry_s: float = 120.0):
    """Serialises "is the study short of trials? then start one" across every worker of a
    study. Taking the lock rides out a lost connection for ``retry_s`` seconds, like every
    other storage call."""
    url = url or DEFAULT_URL
    kind = scheme(url)
    if kind == "grpc":
        with proxy_lock(url, study_name, retry_s):
            yield
        return
    key = f"fmnist-search:{hashlib.sha1(study_name.encode()).hexdigest()[:16]}"
    if kind == "sqlite":
        path = Path(f"{make_url(url).database}.{key.rsplit(':', 1)[1]}.lock")
        with open(path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return
    release = with_backoff(
        lambda: _acquire(url, kind, key),
        budget_s=retry_s,
        lost=f"storage {safe_url(url)} unreachable for {retry_s:.0f}s while claiming a trial; "
        "finished trials are kept there: rerun `run` once it is back",
    )
    try:
        yield
    finally:
        try:
            release()
        except Exception:
            pass  # a dropped connection released its lock with it


@contextlib.contextmanager
def proxy_lock(url: str, study_name: str, retry_s: float = 120.0):
    """The study's claim lock through the proxy at ``url``: poll ``Hold`` until it answers
    ``held``, keep the stream open while the block runs."""
    # grpcio is an optional extra (`fmnist-search[grpc]`): imported for a grpc:// storage only.
    import grpc

    host, port = grpc_address(url)
    deadline, delay = time.monotonic() + retry_s, 0.02
    with grpc.insecure_channel(f"{host}:{port}", options=KEEPALIVE) as channel:
        hold = channel.stream_stream(LOCK_METHOD)
        while True:
            done = threading.Event()

            def requests(done=done):
                yield study_name.encode()
                done.wait()

            try:
                replies = hold(requests())
                answer = next(replies)
            except grpc.RpcError as e:
                done.set()
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise StorageLost(
                        f"storage proxy {url} unreachable for {retry_s:.0f}s while claiming a "
                        "trial; finished trials are kept: rerun `run` once it is back"
                    ) from None
                answer = BUSY
            if answer == HELD:
                break
            done.set()
            # Jitter keeps K waiting workers from polling in step.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            done.set()
            with contextlib.suppress(grpc.RpcError):
                for _ in replies:
                    pass


_ENGINES: dict[str, object] = {}


def _acquire(url: str, kind: str, key: str):
    """Take the study's lock; returns the function that releases it."""
    if kind == "redis":
        import redis  # an optional extra (`fmnist-search[redis]`)

        lock = redis.Redis.from_url(url).lock(key, timeout=300, blocking_timeout=300)
        if not lock.acquire():
            raise StorageLost(f"no claim lock on {safe_url(url)} within 300s")
        return lock.release
    if url not in _ENGINES:
        _ENGINES[url] = sqlalchemy.create_engine(url, **engine_kwargs(url))
    conn = _ENGINES[url].connect()
    try:
        if kind == "postgresql":
            lock_id = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({lock_id})")
            sql = f"SELECT pg_advisory_unlock({lock_id})"
        elif kind == "mysql":
            if conn.exec_driver_sql(f"SELECT GET_LOCK('{key}', 300)").scalar() != 1:
                raise StorageLost(f"no claim lock on {safe_url(url)} within 300s")
            sql = f"SELECT RELEASE_LOCK('{key}')"
        else:
            sql = None
    except BaseException:
        conn.close()
        raise

    def release() -> None:
        try:
            if sql:
                conn.exec_driver_sql(sql)
        finally:
            conn.close()

    return release
