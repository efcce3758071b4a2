"""Open a study storage from a URL, failing with one line that says what to check.

SQLite (the default, one file), PostgreSQL and MySQL through SQLAlchemy; ``redis://`` through
Optuna's journal storage.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import time
import warnings
from pathlib import Path

import optuna
from sqlalchemy.engine import make_url

from search.errors import SearchError

DEFAULT_URL = "sqlite:///runs/fmnist-search.db"

DRIVERS = {
    "postgresql": "psycopg (pip install 'fmnist-search[postgres]')",
    "mysql": "pymysql (pip install 'fmnist-search[mysql]')",
    "redis": "redis (pip install 'fmnist-search[redis]')",
}


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and provenance."""
    if url.startswith("redis"):
        return url.split("@")[-1] if "@" in url else url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        # Wait for a writer instead of failing with "database is locked".
        return {"connect_args": {"timeout": 60}}
    # Fail fast on a dead server; drop pooled connections the server closed.
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}


def open_storage(url: str | None, *, retry_s: float = 0.0) -> optuna.storages.BaseStorage:
    """The storage at ``url``; with ``retry_s`` > 0, every call retries a lost connection for
    up to that many seconds (a worker's view; one-shot commands fail at once)."""
    storage = _open(url)
    return RetryingStorage(storage, url or DEFAULT_URL, retry_s) if retry_s > 0 else storage


def _open(url: str | None) -> optuna.storages.BaseStorage:
    url = url or DEFAULT_URL
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    try:
        if scheme == "redis":
            from optuna.storages.journal import JournalRedisBackend

            with warnings.catch_warnings():  # "experimental" since Optuna 3.1; we test it
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.JournalStorage(JournalRedisBackend(url))
            storage.get_all_studies()  # connects; the backend itself is lazy
            return storage
        if scheme == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Alembic and SQLAlchemy log every migration step at INFO; a user needs none of it.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        if scheme == "sqlite":
            # WAL lets readers (the dashboard, other workers) run beside a writer; it is a
            # property of the file, so setting it once holds for every later connection.
            with storage.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        return storage
    except ModuleNotFoundError as e:
        need = DRIVERS.get(scheme, e.name)
        raise SearchError(f"storage {safe_url(url)} needs the driver {need}") from None
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SearchError(
            f"cannot open storage {safe_url(url)}: {reason[:200]}; check that the server is "
            "running and reachable, and the URL's user, password and database"
        ) from None


class StorageLost(RuntimeError):
    """The storage stayed unreachable for longer than a worker's retry budget."""


def _transient(e: BaseException | None) -> bool:
    """A lost connection, here or anywhere down the chain (Optuna wraps SQLAlchemy's errors in
    its own StorageInternalError)."""
    seen = 0
    while e is not None and seen < 8:
        if _transient_one(e):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _transient_one(e: BaseException) -> bool:
    import sqlalchemy.exc

    if isinstance(e, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return True
    if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
        return True
    try:
        import redis.exceptions

        if isinstance(e, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return True
    except ModuleNotFoundError:
        pass
    return isinstance(e, ConnectionError)


class RetryingStorage(optuna.storages.BaseStorage):
    """Delegates to a storage, retrying calls that fail on a lost connection with backoff for
    a bounded time, then raising ``StorageLost``. Finished trials are in the database already;
    what a retry protects is the trial in flight."""

    def __init__(self, inner: optuna.storages.BaseStorage, url: str, budget_s: float) -> None:
        self.inner, self.url, self.budget_s = inner, url, budget_s

    def _call(self, name: str, *args, **kwargs):
        deadline, delay = time.monotonic() + self.budget_s, 0.5
        while True:
            try:
                return getattr(self.inner, name)(*args, **kwargs)
            except Exception as e:
                if not _transient(e):
                    raise
                if name == "set_trial_state_values" and self._already_set(*args, **kwargs):
                    return True  # the write landed; only its reply was lost
                if time.monotonic() + delay > deadline:
                    raise StorageLost(
                        f"storage {safe_url(self.url)} unreachable for {self.budget_s:.0f}s "
                        f"({type(e).__name__}); finished trials are kept there: rerun `run` "
                        "once it is back"
                    ) from None
                logging.getLogger(__name__).warning(
                    "storage %s unreachable (%s); retrying in %.1fs",
                    safe_url(self.url),
                    type(e).__name__,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _already_set(self, trial_id, state, values=None) -> bool:
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


@contextlib.contextmanager
def claim_lock(url: str | None, study_name: str, retry_s: float = 120.0):
    """Serialises "is the study short of trials? then start one" across every worker of a
    study, so K workers reach exactly ``n_trials`` finished trials: a file lock beside a
    SQLite file, an advisory lock on PostgreSQL / MySQL, a lock key on Redis. Taking the lock
    rides out a lost connection for ``retry_s`` seconds, like every other storage call."""
    url = url or DEFAULT_URL
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    key = f"fmnist-search:{hashlib.sha1(study_name.encode()).hexdigest()[:16]}"
    if scheme == "sqlite":
        path = Path(f"{make_url(url).database}.{key.rsplit(':', 1)[1]}.lock")
        with open(path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return
    deadline, delay = time.monotonic() + retry_s, 0.5
    while True:
        try:
            release = _acquire(url, scheme, key)
            break
        except Exception as e:
            if not _transient(e) or time.monotonic() + delay > deadline:
                if _transient(e):
                    raise StorageLost(
                        f"storage {safe_url(url)} unreachable for {retry_s:.0f}s "
                        "while claiming a trial; finished trials are kept there: "
                        "rerun `run` once it is back"
                    ) from None
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    try:
        yield
    finally:
        try:
            release()
        except Exception:
            pass  # a dropped connection released its lock with it


_ENGINES: dict[str, object] = {}


def _acquire(url: str, scheme: str, key: str):
    """Take the study's lock; returns the function that releases it."""
    if scheme == "redis":
        import redis

        lock = redis.Redis.from_url(url).lock(key, timeout=300, blocking_timeout=300)
        if not lock.acquire():
            raise StorageLost(f"no claim lock on {safe_url(url)} within 300s")
        return lock.release
    import sqlalchemy

    if url not in _ENGINES:
        _ENGINES[url] = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    conn = _ENGINES[url].connect()
    try:
        if scheme == "postgresql":
            lock_id = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({lock_id})")
            sql = f"SELECT pg_advisory_unlock({lock_id})"
        elif scheme == "mysql":
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
