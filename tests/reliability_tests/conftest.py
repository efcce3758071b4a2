"""The fault-injection suite: real storages, real worker processes, every test `slow`.

Tests that need a server run over the ``storage_url`` parameter or carry the
``server(KIND)`` marker, and skip, with the reason, where the server is absent; ``.ci/run``
reads the counts per kind written at the end (``FMNIST_SERVER_REPORT``) and fails unless
every kind had a test pass.

Every test ends with ``ledger.check(...)``: unique trial numbers, nothing left RUNNING, and
its row of the reliability table (trials asked and finished, faults, lost, duplicated), which
``tools/reliability_table.py`` collects through ``FMNIST_RELIABILITY_ROWS``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import FrozenTrial, TrialState

from tests.testing import SERVERS

HERE = Path(__file__).parent


ROWS_ENV = "FMNIST_RELIABILITY_ROWS"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _write_row(row: dict[str, Any]) -> None:
    if path := os.environ.get(ROWS_ENV):
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def backend_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


class Ledger:
    """One test's account of its study: what was asked, what the study holds after the
    faults, and what was lost or duplicated on the way."""

    def __init__(self, test: str) -> None:
        self.test = test

    @staticmethod
    def snapshot(trials: Sequence[FrozenTrial]) -> dict[int, tuple]:
        """The finished trials before a fault, to be found unchanged after it."""
        return {t.number: (t.params, t.values) for t in trials if t.state in FINISHED}

    def check(
        self,
        trials: Sequence[FrozenTrial],
        *,
        backend: str,
        asked: int,
        faults: str,
        workers: int = 1,
        before: dict[int, tuple] | None = None,
    ) -> dict[str, Any]:
        """Record this test's row, then assert unique trial numbers and no RUNNING trial.

        Lost: finished trials asked for and missing, and trials finished before the fault that
        are gone or changed. Duplicated: repeated trial numbers, finished trials beyond those
        asked, and retries that finished beside the trial they retried."""
        numbers = [t.number for t in trials]
        finished = {t.number: t for t in trials if t.state in FINISHED}
        kept = self.snapshot(trials)
        changed = [n for n, old in (before or {}).items() if kept.get(n) != old]
        twice = [t.number for t in finished.values() if t.user_attrs.get("retry_of") in finished]
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        row = {
            "kind": "row",
            "test": self.test,
            "backend": backend,
            "workers": workers,
            "asked": asked,
            "finished": len(finished),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "faults": faults,
            "lost": max(0, asked - len(finished)) + len(changed),
            "duplicated": len(numbers)
            - len(set(numbers))
            + max(0, len(finished) - asked)
            + len(twice),
            "running_left": len(running),
        }
        _write_row(row)
        assert len(set(numbers)) == len(numbers), f"repeated trial numbers: {sorted(numbers)}"
        assert not running, f"trials left RUNNING: {running}"
        return row


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    return Ledger(request.node.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _count_server_test(report)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _write_row(
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
    for item in items:
        if HERE in item.path.parents:  # every fault test starts real worker processes
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
    """``{KIND_passed: n, KIND_skipped: n}`` for ``.ci/check-servers``."""
    if path := os.environ.get("FMNIST_SERVER_REPORT"):
        Path(path).write_text(json.dumps(_counts))
