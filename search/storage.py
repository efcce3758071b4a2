"""Open a study storage from a URL, failing with one line that says what to check.

SQLite (the default, one file), PostgreSQL and MySQL through SQLAlchemy; ``redis://`` through
Optuna's journal storage.
"""

from __future__ import annotations

import logging
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


def open_storage(url: str | None) -> optuna.storages.BaseStorage:
    url = url or DEFAULT_URL
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    try:
        if scheme == "redis":
            from optuna.storages.journal import JournalRedisBackend

            storage = optuna.storages.JournalStorage(JournalRedisBackend(url))
            storage.get_all_studies()  # connects; the backend itself is lazy
            return storage
        if scheme == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Alembic and SQLAlchemy log every migration step at INFO; a user needs none of it.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except ModuleNotFoundError as e:
        need = DRIVERS.get(scheme, e.name)
        raise SearchError(f"storage {safe_url(url)} needs the driver {need}") from None
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SearchError(
            f"cannot open storage {safe_url(url)}: {reason[:200]}; check that the server is "
            "running and reachable, and the URL's user, password and database"
        ) from None
