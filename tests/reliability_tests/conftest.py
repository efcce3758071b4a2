"""The fault-injection suite: real storages, real worker processes, every test `slow`.

Tests that need a server run over the ``storage_url`` parameter or carry the
``server(KIND)`` marker, and skip, with the reason, where the server is absent; ``.ci/run``
reads the counts per kind written at the end (``FMNIST_SERVER_REPORT``) and fails unless
every kind had a test pass.

Every test ends with ``ledger.check(...)`` (``ledger.py``): nothing lost, duplicated or left
RUNNING, and its row of the reliability table (trials asked and finished, faults, lost,
duplicated), which ``tools/reliability_table.py`` collects through ``FMNIST_RELIABILITY_ROWS``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability_tests.ledger import Ledger, write_row
from tests.testing import SERVERS

HERE = Path(__file__).parent


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    return Ledger(request.node.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in _collected:  # pytest-xdist's controller: its workers write
        return
    _count_server_test(report)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        write_row(
            {
                "kind": "outcome",
                "test": report.nodeid,
                "outcome": report.outcome,
                "seconds": report.duration,
                "reason": report.longrepr[2] if report.skipped else None,
            }
        )


# Every kind of server the suite must have run against on CI, each counted on its own: one
# passing Redis test says nothing about PostgreSQL. "private_postgresql" is the server the
# restart tests start themselves (needs initdb; .ci/setup installs it); "ray" the two-node Ray
# cluster tests/ray_tests start (needs fmnist-search[ray]).
KINDS = (*SERVERS, "private_postgresql", "ray")
_counts: dict[str, int] = {
    f"{kind}_{outcome}": 0 for kind in KINDS for outcome in ("passed", "skipped")
}
_kind_of: dict[str, str] = {}
_collected: set[str] = set()  # collected here: every pytest-xdist worker, never its controller


def server_kind(item: pytest.Item) -> str | None:
    """The server a test runs against: its ``server(KIND)`` marker, else its ``storage_url``
    parameter when that names a server."""
    marker = item.get_closest_marker("server")
    if marker is not None and marker.args:
        return marker.args[0]
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("storage_url") if callspec else None
    return param if param in SERVERS else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _collected.update(item.nodeid for item in items)
    for item in items:
        # Every fault test starts real worker processes; the ledger's own test starts none.
        if HERE in item.path.parents and item.path.name != "test_ledger.py":
            item.add_marker(pytest.mark.slow)
        if kind := server_kind(item):
            _kind_of[item.nodeid] = kind


def _count_server_test(report: pytest.TestReport) -> None:
    kind = _kind_of.get(report.nodeid)
    if kind is None:
        return
    if report.when == "call" and report.passed:
        _counts[f"{kind}_passed"] += 1
    elif report.skipped:
        _counts[f"{kind}_skipped"] += 1


def pytest_sessionfinish(session):
    """``{KIND_passed: n, KIND_skipped: n}`` for ``.ci/check-servers``: one line from each
    process that ran tests (each pytest-xdist worker), which the check adds up."""
    if (path := os.environ.get("FMNIST_SERVER_REPORT")) and _collected:
        with open(path, "a") as f:
            f.write(json.dumps(_counts) + "\n")
