"""The gRPC storage proxy in front of PostgreSQL: commands read through it, and its claim
lease is the database's, so workers through the proxy and workers on the database directly
exclude each other; a holder that dies releases it, one that stops loses it after its
lease."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time

import optuna
import pytest

from search.storage.claim import claim_lock, proxy_lock
from tests.reliability_tests.proxy import running_proxy
from tests.testing import ROOT, SERVERS, run_process, stopped_holder, unreachable

pytestmark = pytest.mark.server("postgresql")
PG = SERVERS["postgresql"]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    if reason := unreachable("postgresql"):
        pytest.skip(reason)
    with running_proxy(PG, tmp_path_factory.mktemp("proxy") / "proxy.log") as url:
        yield url


@pytest.mark.parametrize("first", ["direct", "proxy"])
def test_one_claim_lock_through_the_proxy_and_direct(proxy, study_name, first):
    direct = functools.partial(claim_lock, PG, study_name)
    through = functools.partial(proxy_lock, proxy, study_name)
    holder, waiter = (direct, through) if first == "direct" else (through, direct)
    taken = []
    with holder():
        thread = threading.Thread(target=lambda: taken.append(_take(waiter)))
        thread.start()
        time.sleep(1.5)
        assert not taken  # the other side waits while this one holds
        released = time.monotonic()
    thread.join(timeout=30)
    assert taken and taken[0] >= released


def _take(lock) -> float:
    with lock():
        return time.monotonic()


def test_a_dead_holder_releases_the_lock(proxy, study_name):
    hold_and_die = (
        "import os, signal\n"
        "from search.storage.claim import proxy_lock\n"
        f"with proxy_lock({proxy!r}, {study_name!r}):\n"
        "    print('held', flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", hold_and_die], cwd=ROOT, capture_output=True, text=True
    )
    assert done.stdout == "held\n" and done.returncode == -9
    start = time.monotonic()
    with claim_lock(PG, study_name, retry_s=30):
        assert time.monotonic() - start < 10


def test_a_stopped_holder_through_the_proxy_stalls_direct_workers_for_its_lease(proxy, study_name):
    with stopped_holder(proxy, study_name, lease_s=1.0) as resume:
        start = time.monotonic()
        with claim_lock(PG, study_name, retry_s=30):
            waited = time.monotonic() - start
            assert resume() == "lost"  # the proxy renews by token: another holder took over
    assert waited < 1.0 + 2.0, waited  # its lease, not the ~15 s keepalive needs


def test_commands_read_through_the_proxy(proxy, study_name):
    study = optuna.create_study(study_name=study_name, storage=PG)
    study.enqueue_trial({"x": 1.0})
    r = run_process("studies", "--storage", proxy)
    assert r.code == 0, r.err
    assert study_name in r.out
