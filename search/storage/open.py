"""Open a study storage from a URL, failing with one line that says what to check.

SQLite (the default, one file), PostgreSQL and MySQL through SQLAlchemy; ``redis://`` through
Optuna's journal storage; ``grpc://`` through Optuna's storage proxy (``storage-proxy``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.storages import GrpcStorageProxy
from optuna.storages.journal import JournalRedisBackend

from search.errors import SearchError
from search.storage.retry import RetryingStorage

DEFAULT_URL = "sqlite:///runs/fmnist-search.db"

DRIVERS = {
    "postgresql": "psycopg (pip install 'fmnist-search[postgres]')",
    "mysql": "pymysql (pip install 'fmnist-search[mysql]')",
    "redis": "redis (pip install 'fmnist-search[redis]')",
    "grpc": "grpcio (pip install 'fmnist-search[grpc]')",
}


def safe_url(url: str) -> str:
    """The URL with any password masked (``:***@``), its scheme kept, for messages and
    provenance."""
    if scheme(url) in ("redis", "rediss", "grpc"):  # not a SQLAlchemy URL
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def make_url(url: str):
    """SQLAlchemy's parsed URL. SQLAlchemy is imported only here and where a database is
    opened: a worker through the proxy or on Redis never loads it (about 11 MB)."""
    from sqlalchemy.engine import make_url as parse  # heavy: loaded where a URL is parsed

    return parse(url)


def engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        # Wait for a writer instead of failing with "database is locked".
        return {"connect_args": {"timeout": 60}}
    # Fail fast on a dead server; drop pooled connections the server closed.
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}


def open_storage(
    url: str | None, *, retry_s: float = 0.0, create: bool = True
) -> optuna.storages.BaseStorage:
    """The storage at ``url``; with ``retry_s`` > 0, every call retries a lost connection for
    up to that many seconds (a worker's view; one-shot commands fail at once). With
    ``create=False`` (a command that only reads) a SQLite file that is not there is an error,
    not a new empty storage.

    A database storage is wrapped in Optuna's cache, as ``optuna.storages.get_storage`` does
    for a bare one (it cannot see through the retry wrapper): a finished trial never changes,
    so each process reads it once, and a claim reads only the trials new or unfinished since
    its last read instead of every trial with all its attributes."""
    storage = _open(url, create)
    if isinstance(storage, optuna.storages.RDBStorage):
        storage = optuna.storages.get_storage(storage)  # Optuna's _CachedStorage
    return (
        RetryingStorage(storage, safe_url(url or DEFAULT_URL), retry_s) if retry_s > 0 else storage
    )


def _open(url: str | None, create: bool = True) -> optuna.storages.BaseStorage:
    url = url or DEFAULT_URL
    kind = scheme(url)
    if kind == "sqlite" and not create and not _sqlite_file_exists(url):
        raise SearchError(
            f"no storage at {safe_url(url)}: its file does not exist; check --storage, or run "
            "a study there first"
        )
    try:
        if kind == "grpc":
            return _open_proxy(url)
        if kind == "redis":
            with warnings.catch_warnings():  # "experimental" since Optuna 3.1; we test it
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.JournalStorage(JournalRedisBackend(url))
            storage.get_all_studies()  # connects; the backend itself is lazy
            return storage
        if kind == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Alembic and SQLAlchemy log every migration step at INFO; a user needs none of it.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
        if kind == "sqlite":
            # WAL lets readers (the dashboard, other workers) run beside a writer; it is a
            # property of the file, so setting it once holds for every later connection.
            with storage.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        return storage
    except ModuleNotFoundError as e:
        need = DRIVERS.get(kind, e.name)
        raise SearchError(f"storage {safe_url(url)} needs the driver {need}") from None
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SearchError(
            f"cannot open storage {safe_url(url)}: {reason[:200]}; check that the server is "
            "running and reachable, and the URL's user, password and database"
        ) from None


def _sqlite_file_exists(url: str) -> bool:
    try:
        database = make_url(url).database
    except Exception:
        return True  # a malformed URL: opening it says what is wrong
    return not database or database == ":memory:" or Path(database).is_file()


def _open_proxy(url: str) -> optuna.storages.BaseStorage:
    host, port = grpc_address(url)
    with warnings.catch_warnings():  # "experimental" since Optuna 4.2; we test it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = GrpcStorageProxy(host=host, port=port)
    try:
        storage.wait_server_ready(timeout=10)
    except ConnectionError:
        raise SearchError(
            f"no storage proxy answers at {url}; start one there with "
            "`fmnist-search storage-proxy --storage DATABASE_URL`"
        ) from None
    return storage


def grpc_address(url: str) -> tuple[str, int]:
    """``grpc://host:port`` as (host, port)."""
    rest = url.split("://", 1)[1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise SearchError(f"storage {url}: a proxy URL is grpc://HOST:PORT, e.g. grpc://db:13000")
    return host, int(port)


def scheme(url: str | None) -> str:
    """``postgresql`` for ``postgresql+psycopg://...``; the default storage's for None."""
    return (url or DEFAULT_URL).split(":", 1)[0].split("+", 1)[0]


def load_study(name: str, url: str | None) -> optuna.Study:
    """An existing study, or one line naming the studies that are there."""
    storage = open_storage(url, create=False)
    known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if name not in known:
        raise SearchError(
            f"no study {name!r} in {safe_url(url or DEFAULT_URL)}; "
            f"studies there: {', '.join(known) or 'none'}"
        )
    return optuna.load_study(study_name=name, storage=storage)
