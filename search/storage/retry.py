"""Riding out a lost storage connection: which errors are transient, one backoff loop, and a
storage proxy that puts every call of a worker through it."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import optuna

T = TypeVar("T")
RETRY_S = 120.0  # how long a worker rides out a lost storage before it stops (--storage-retry)


class StorageLost(RuntimeError):
    """The storage stayed unreachable for longer than a worker's retry budget."""


def transient(e: BaseException | None) -> bool:
    """A lost connection, here or anywhere down the chain (Optuna wraps SQLAlchemy's errors in
    its own StorageInternalError)."""
    seen = 0
    while e is not None and seen < 8:
        if _transient_one(e):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _transient_one(e: BaseException) -> bool:
    # SQLAlchemy, redis and grpcio are heavy, the last two optional extras: an error of one
    # that this process never imported cannot occur, so none is imported here to look.
    sa, redis, grpc = (sys.modules.get(m) for m in ("sqlalchemy.exc", "redis.exceptions", "grpc"))
    if sa is not None and isinstance(e, sa.OperationalError | sa.InterfaceError):
        return True
    if sa is not None and isinstance(e, sa.DBAPIError) and e.connection_invalidated:
        return True
    if redis is not None and isinstance(e, redis.ConnectionError | redis.TimeoutError):
        return True
    if grpc is not None and isinstance(e, grpc.RpcError):
        return e.code() == grpc.StatusCode.UNAVAILABLE
    return isinstance(e, ConnectionError)


def with_backoff(
    call: Callable[[], T],
    *,
    budget_s: float,
    lost: str,
    landed: Callable[[], bool] | None = None,
) -> T:
    """``call()``, retried with doubling waits (0.5 s up to 10 s) while it fails on a lost
    connection, for up to ``budget_s`` seconds; then ``StorageLost(lost)``. ``landed`` says
    whether a failed call's write took effect after all (only its reply was lost)."""
    deadline, delay = time.monotonic() + budget_s, 0.5
    while True:
        try:
            return call()
        except Exception as e:
            if not transient(e):
                raise
            if landed is not None and landed():
                return True  # type: ignore[return-value]
            if time.monotonic() + delay > deadline:
                raise StorageLost(f"{lost} ({type(e).__name__})") from None
            logging.getLogger(__name__).warning(
                "storage unreachable (%s); retrying in %.1fs", type(e).__name__, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


class RetryingStorage(optuna.storages.BaseStorage):
    """Delegates to a storage, retrying calls that fail on a lost connection (``with_backoff``)
    for a bounded time, then raising ``StorageLost``. Finished trials are in the database
    already; what a retry protects is the trial in flight."""

    def __init__(self, inner: optuna.storages.BaseStorage, label: str, budget_s: float) -> None:
        self.inner, self.label, self.budget_s = inner, label, budget_s

    def _call(self, name: str, *args, **kwargs):
        landed = None
        if name == "set_trial_state_values":
            landed = lambda: self._state_is(*args, **kwargs)  # noqa: E731
        return with_backoff(
            lambda: getattr(self.inner, name)(*args, **kwargs),
            budget_s=self.budget_s,
            lost=f"storage {self.label} unreachable for {self.budget_s:.0f}s; finished trials "
            "are kept there: rerun `run` once it is back",
            landed=landed,
        )

    def _state_is(self, trial_id, state, values=None) -> bool:
        try:
            return self.inner.get_trial(trial_id).state == state
        except Exception:
            return False

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _delegate(name: str):
    def method(self, *args, **kwargs):
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


for _name in [
    n
    for n in dir(optuna.storages.BaseStorage)
    if not n.startswith("_") and callable(getattr(optuna.storages.BaseStorage, n))
]:
    setattr(RetryingStorage, _name, _delegate(_name))
RetryingStorage.__abstractmethods__ = frozenset()
