"""``fmnist-search storage-proxy``: Optuna's gRPC storage proxy in front of PostgreSQL or
MySQL, so that hundreds of workers share the proxy's few database connections instead of each
holding their own. Workers reach it with ``--storage grpc://HOST:PORT``.

Optuna's proxy serves the storage API only; the study's claim lock (``search.storage.claim``)
is a database lock held on a connection, which a storage call cannot express. The proxy
therefore serves the lock too, on the same port: a worker opens a ``Hold`` stream naming the
study (the worker's side, ``search.storage.claim.proxy_lock``, lives beside the claim lock);
the proxy answers ``busy`` at once when another worker holds it (the worker polls, so no
proxy thread waits on a lock), else takes the same advisory lock on the database that
direct workers take and answers ``held``. The lock is released when the worker closes the
stream, or when its connection drops because the worker died: as a database connection
releases an advisory lock when its process dies. Workers through the proxy and workers on
the database directly therefore exclude each other on one study.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import optuna

from search.errors import SearchError
from search.storage.claim import BUSY, HELD, LOCK_METHOD, claim_lock
from search.storage.open import open_storage, safe_url, scheme
from search.storage.retry import RetryingStorage


class _LockService:
    """Serves ``Hold``: one holder per study across every client of this proxy, and the
    database's own claim lock while it holds."""

    def __init__(self, db_url: str, retry_s: float) -> None:
        self.db_url, self.retry_s = db_url, retry_s
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def hold(self, requests: Iterator[bytes], context) -> Iterator[bytes]:
        study = next(requests).decode()
        with self._guard:
            local = self._locks.setdefault(study, threading.Lock())
        if not local.acquire(blocking=False):
            yield BUSY
            return
        try:
            with claim_lock(self.db_url, study, self.retry_s):
                yield HELD
                for _ in requests:  # ends when the client closes the stream or is gone
                    pass
        finally:
            local.release()


def serve(
    url: str, *, host: str = "127.0.0.1", port: int = 13000, threads: int = 32, retry_s=120.0
):
    """Start the proxy for the storage at ``url``; returns the running ``grpc.Server``."""
    # grpcio is an optional extra (`fmnist-search[grpc]`): imported when a proxy starts.
    import grpc
    from optuna.storages._grpc.server import make_server

    if scheme(url) not in ("postgresql", "mysql", "sqlite"):
        raise SearchError(
            f"storage-proxy serves a database storage (postgresql://, mysql://); "
            f"{safe_url(url)} is not one (Optuna's proxy does not serve a journal storage)"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna's cache in front of the database, as its docs ask; retries ride out a restart.
    cached = optuna.storages.get_storage(open_storage(url))
    storage = RetryingStorage(cached, safe_url(url), retry_s)
    try:
        server = make_server(storage, host, port, ThreadPoolExecutor(max_workers=threads))
    except RuntimeError as e:  # grpc: "Failed to bind to address"
        raise SearchError(
            f"storage-proxy cannot listen on {host}:{port} ({e}); pick --port"
        ) from None
    hold = grpc.stream_stream_rpc_method_handler(_LockService(url, retry_s).hold)
    service, method = LOCK_METHOD.strip("/").split("/")
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {method: hold}),)
    )
    server.start()
    return server
