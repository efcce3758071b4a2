"""The study's claim lease: one holder at a time, on every storage, for a bounded time.

A lease is a record in the storage, not a lock bound to a connection or a process. It has a
deadline on the storage's own clock, so a holder that stops (SIGSTOP, a frozen VM, a machine
gone without closing its connections) stalls the others for at most its lease, whatever the
holder's clock says. Each new holder gets the next value of a counter, its fencing token: a
holder renews by token, and a renewal succeeds only while no other holder has taken the
lease since, expired or not. So a holder that wakes after losing the lease learns it before
its write counts (``Lease.fence``).

- SQL (SQLite, PostgreSQL, MySQL): a row per study in ``fmnist_claim_leases``, in the
  study's own database, taken by ``UPDATE ... WHERE expires_at <= <the database's now>``.
- Redis: a key set with a PX expiry, and a counter key for the token; Lua scripts take, renew
  and release it atomically on the server.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from dataclasses import dataclass
from typing import Protocol

from search.storage.open import engine_kwargs, scheme
from search.storage.retry import with_backoff

LEASE_S = 10.0  # a hold is a slot reservation (milliseconds): this is ample, and the worst stall
TABLE = "fmnist_claim_leases"
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


class LeaseLost(RuntimeError):
    """Another holder took the lease since this one's: writes made under it must not count."""


@dataclass(frozen=True)
class Busy:
    """The lease is someone else's: who (as they named themselves) and for how much longer."""

    holder: str
    left_s: float

    def __str__(self) -> str:
        return f"held by {self.holder}, {max(self.left_s, 0):.1f}s left on its lease"


class LeaseStore(Protocol):
    """Where a storage keeps its leases; ``key`` names the study, ``token`` the holder."""

    def take(self, key: str, holder: str, lease_s: float) -> int | Busy: ...

    def renew(self, key: str, token: int, lease_s: float) -> bool: ...

    def release(self, key: str, token: int) -> None: ...


@dataclass(frozen=True)
class Lease:
    """A lease held: ``fence()`` before a write counts renews it, or raises ``LeaseLost``."""

    store: LeaseStore
    key: str
    token: int
    lease_s: float
    retry_s: float
    label: str

    def fence(self) -> None:
        kept = with_backoff(
            lambda: self.store.renew(self.key, self.token, self.lease_s),
            budget_s=self.retry_s,
            lost=f"storage {self.label} unreachable for {self.retry_s:.0f}s while renewing the "
            "claim lease; finished trials are kept there: rerun `run` once it is back",
        )
        if not kept:
            raise LeaseLost(f"claim lease {self.key} (token {self.token}) taken by another holder")


def lease_key(study_name: str) -> str:
    return f"fmnist-search:{hashlib.sha1(study_name.encode()).hexdigest()[:16]}"


_STORES: dict[str, LeaseStore] = {}
_GUARD = threading.Lock()


def lease_store(url: str) -> LeaseStore:
    """The lease store of the storage at ``url`` (one per URL and process)."""
    with _GUARD:
        if url not in _STORES:
            _STORES[url] = RedisLeases(url) if scheme(url) == "redis" else SqlLeases(url)
        return _STORES[url]


# "now" on the database server's clock, in seconds since the epoch. SQLite's clock is the one
# machine's that holds the file (every process of a SQLite study runs there).
_NOW = {
    "postgresql": "extract(epoch from clock_timestamp())",
    "mysql": "UNIX_TIMESTAMP(NOW(6))",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


class SqlLeases:
    """Leases as rows: a conditional UPDATE takes an expired one, so the database decides."""

    def __init__(self, url: str) -> None:
        import sqlalchemy  # here, not at the top: a worker on Redis or the proxy needs none

        self.kind, self.text = scheme(url), sqlalchemy.text
        self.engine = sqlalchemy.create_engine(url, **engine_kwargs(url))
        now = _NOW[self.kind]
        ignore = "INSERT IGNORE INTO" if self.kind == "mysql" else "INSERT INTO"
        conflict = "" if self.kind == "mysql" else " ON CONFLICT DO NOTHING"
        self.sql = {
            "take": f"UPDATE {TABLE} SET holder = :holder, token = token + 1, expires_at = "
            f"{now} + :lease WHERE name = :key AND expires_at <= {now}",
            "token": f"SELECT token FROM {TABLE} WHERE name = :key",
            "first": f"{ignore} {TABLE} (name, holder, token, expires_at) "
            f"VALUES (:key, :holder, 1, {now} + :lease){conflict}",
            "busy": f"SELECT holder, expires_at - {now} FROM {TABLE} WHERE name = :key",
            "renew": f"UPDATE {TABLE} SET expires_at = {now} + :lease "
            "WHERE name = :key AND token = :token",
            "release": f"UPDATE {TABLE} SET expires_at = 0 WHERE name = :key AND token = :token",
        }
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR(64) PRIMARY KEY, "
                    "holder VARCHAR(255) NOT NULL, token BIGINT NOT NULL, "
                    "expires_at DOUBLE PRECISION NOT NULL)"
                )
        except sqlalchemy.exc.DBAPIError:
            # PostgreSQL's IF NOT EXISTS is not safe against a second worker doing the same.
            if not sqlalchemy.inspect(self.engine).has_table(TABLE):
                raise

    def _run(self, conn, name: str, **params):
        return conn.execute(self.text(self.sql[name]), params)

    def take(self, key: str, holder: str, lease_s: float) -> int | Busy:
        holder = holder[:255]
        with self.engine.begin() as conn:
            if self._run(conn, "take", key=key, holder=holder, lease=lease_s).rowcount == 1:
                return int(self._run(conn, "token", key=key).scalar_one())
            row = self._run(conn, "busy", key=key).first()
            if row is not None:
                return Busy(row[0], float(row[1]))
            if self._run(conn, "first", key=key, holder=holder, lease=lease_s).rowcount == 1:
                return 1
            return Busy("another worker", lease_s)  # it made the row a moment before this one

    def renew(self, key: str, token: int, lease_s: float) -> bool:
        with self.engine.begin() as conn:
            return self._run(conn, "renew", key=key, token=token, lease=lease_s).rowcount == 1

    def release(self, key: str, token: int) -> None:
        with self.engine.begin() as conn:
            self._run(conn, "release", key=key, token=token)


_TAKE = """
local v = redis.call('GET', KEYS[1])
if v then return {0, v, redis.call('PTTL', KEYS[1])} end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {t}
"""
_RENEW = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[3], 'PX', ARGV[2])
end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisLeases:
    """Leases as keys that expire on the Redis server's clock; ``KEY:fence`` counts holders."""

    def __init__(self, url: str) -> None:
        import redis  # an optional extra (`fmnist-search[redis]`)

        client = redis.Redis.from_url(url)
        self._take, self._renew, self._release = (
            client.register_script(s) for s in (_TAKE, _RENEW, _RELEASE)
        )

    def take(self, key: str, holder: str, lease_s: float) -> int | Busy:
        got = self._take(keys=[key, f"{key}:fence"], args=[holder, int(lease_s * 1000)])
        if got[0]:
            return int(got[0])
        return Busy(got[1].decode().split(" ", 1)[1], got[2] / 1000)

    def renew(self, key: str, token: int, lease_s: float) -> bool:
        # An expired key that no one took since is made again, named by this process.
        args = [str(token), int(lease_s * 1000), HOLDER]
        return bool(self._renew(keys=[key, f"{key}:fence"], args=args))

    def release(self, key: str, token: int) -> None:
        self._release(keys=[key, f"{key}:fence"], args=[str(token)])
