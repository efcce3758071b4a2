"""``fmnist-search storage-proxy``: Optuna's gRPC storage proxy in front of PostgreSQL or
MySQL, so that hundreds of workers share the proxy's few database connections instead of each
holding their own. Workers reach it with ``--storage grpc://HOST:PORT``.

Optuna's proxy serves the storage API only; the study's claim lease (``search.storage.claim``)
is held across several calls, and a worker must learn whether it still holds it, which a
storage call cannot express. The proxy therefore serves the lease too, on the same port: a
worker opens a ``Hold`` stream naming the study and the lease's seconds (the worker's side,
``search.storage.claim.proxy_lock``, lives beside the claim lease); the proxy tries once to
take the database's lease for it, the very record direct workers take, and answers ``held``,
or ``busy`` with who holds it (the worker polls, so no proxy thread waits on a lease). Each
``fence`` the worker sends renews the lease and is answered ``held`` or ``lost``; closing the
stream releases it. A worker that stops sends nothing, so its lease ends at its deadline; one
whose machine vanished is also noticed by keepalive pings, which the server sends too.
Workers through the proxy and workers on the database directly therefore exclude each other
on one study.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import optuna

from search.errors import SearchError
from search.storage.claim import BUSY, HELD, KEEPALIVE, LOCK_METHOD, LOST
from search.storage.lease import HOLDER, Busy, lease_key, lease_store
from search.storage.open import open_storage, safe_url, scheme
from search.storage.retry import RETRY_S, RetryingStorage, transient


class _LockService:
    """Serves ``Hold``: the database's claim lease, taken, renewed and released for a worker."""

    def __init__(self, db_url: str) -> None:
        self.db_url, self.store = db_url, lease_store(db_url)

    def hold(self, requests: Iterator[bytes], context) -> Iterator[bytes]:
        study, lease_s = next(requests).decode().split("\t")
        key, lease_s = lease_key(study), float(lease_s)
        try:
            token = self.store.take(key, f"{context.peer()} via proxy {HOLDER}", lease_s)
        except Exception as e:
            if not transient(e):
                raise
            token = Busy(f"nobody known ({safe_url(self.db_url)} unreachable from the proxy)", 0)
        if isinstance(token, Busy):
            yield b"\t".join((BUSY, token.holder.encode(), str(token.left_s).encode()))
            return
        try:
            yield HELD
            for _ in requests:  # fences, until the client closes the stream or is gone
                yield HELD if self._renew(key, token, lease_s) else LOST
        finally:
            with contextlib.suppress(Exception):  # unreleased, it expires at its deadline
                self.store.release(key, token)

    def _renew(self, key: str, token: int, lease_s: float) -> bool:
        """A renewal the database did not answer counts as lost: the worker hands its slot
        back and claims again, which is always safe."""
        try:
            return self.store.renew(key, token, lease_s)
        except Exception as e:
            if not transient(e):
                raise
            return False


def serve(
    url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 13000,
    threads: int = 32,
    retry_s: float = RETRY_S,
):
    """Start the proxy for the storage at ``url``; returns the running ``grpc.Server``."""
    # grpcio is an optional extra (`fmnist-search[grpc]`): imported when a proxy starts.
    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    if scheme(url) not in ("postgresql", "mysql", "sqlite"):
        raise SearchError(
            f"storage-proxy serves a database storage (postgresql://, mysql://); "
            f"{safe_url(url)} is not one (Optuna's proxy does not serve a journal storage)"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna's cache in front of the database, as its docs ask; retries ride out a restart.
    cached = optuna.storages.get_storage(open_storage(url))
    storage = RetryingStorage(cached, safe_url(url), retry_s)
    # Optuna's make_server, with keepalive: a stream whose worker vanished ends (and its
    # lease is released) without waiting for the operating system's TCP timeout.
    server = grpc.server(ThreadPoolExecutor(max_workers=threads), options=KEEPALIVE)
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    try:
        server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:  # grpc: "Failed to bind to address"
        raise SearchError(
            f"storage-proxy cannot listen on {host}:{port} ({e}); pick --port"
        ) from None
    hold = grpc.stream_stream_rpc_method_handler(_LockService(url).hold)
    service, method = LOCK_METHOD.strip("/").split("/")
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {method: hold}),)
    )
    server.start()
    return server
