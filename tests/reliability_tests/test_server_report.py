"""CI's check that every kind of server was exercised: the counts the suite writes per kind,
and ``.ci/check-servers`` failing when any kind had no passing test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testing import ROOT

CHECK = ROOT / ".ci" / "check-servers"

# Stand-ins for the suite's server tests, counted by the real conftest loaded as a plugin.
FAKE_SUITE = """
import pytest

@pytest.mark.server("private_postgresql")
def test_private(): pass

@pytest.mark.parametrize("storage_url", ["sqlite", "postgresql", "redis"])
def test_storage(storage_url): pass

@pytest.mark.parametrize("storage_url", ["mysql"])
def test_absent(storage_url): pytest.skip("mysql server at 127.0.0.1 not reachable")
"""


def check(*counts: dict[str, int], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The check on a report with one line per test process."""
    report = tmp_path / "servers.json"
    report.write_text("".join(json.dumps(c) + "\n" for c in counts))
    return subprocess.run(
        [sys.executable, str(CHECK), str(report)], capture_output=True, text=True, timeout=60
    )


def test_the_suite_counts_each_kind_of_server(tmp_path: Path) -> None:
    """In two test processes, as the suite runs: each writes its line, none is lost."""
    (tmp_path / "test_fake.py").write_text(FAKE_SUITE)
    report = tmp_path / "servers.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.reliability_tests.conftest",
         "-n", "2", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_fake.py")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env=os.environ | {"FMNIST_SERVER_REPORT": str(report)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == 2  # one from each worker; the controller collects none and writes none
    counts = {key: sum(line[key] for line in lines) for key in lines[0]}
    assert counts == {
        "postgresql_passed": 1, "postgresql_skipped": 0,
        "mysql_passed": 0, "mysql_skipped": 1,
        "redis_passed": 1, "redis_skipped": 0,
        "private_postgresql_passed": 1, "private_postgresql_skipped": 0,
        "ray_passed": 0, "ray_skipped": 0,  # no Ray test in the fake suite
    }  # fmt: skip
    failed = check(*lines, tmp_path=tmp_path)
    assert failed.returncode == 1
    assert "no test passed against mysql, ray (skipped: mysql 1, ray 0)" in failed.stderr


@pytest.mark.parametrize("missing", ["postgresql", "mysql", "redis", "private_postgresql", "ray"])
def test_one_kind_without_a_pass_fails_ci(missing: str, tmp_path: Path) -> None:
    counts = {f"{k}_passed": 3 for k in ("postgresql", "mysql", "redis", "private_postgresql")}
    counts[f"{missing}_passed"] = 0  # a kind the suite adds later is checked the same way
    done = check(counts, tmp_path=tmp_path)
    assert done.returncode == 1 and f"no test passed against {missing} " in done.stderr


def test_every_kind_passing_is_ok(tmp_path: Path) -> None:
    counts = {f"{k}_passed": 2 for k in ("postgresql", "mysql", "redis", "private_postgresql")}
    done = check(counts, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mysql 2" in done.stdout and "private_postgresql 2" in done.stdout


def test_the_check_adds_up_the_lines_of_every_test_process(tmp_path: Path) -> None:
    """PostgreSQL passed in one pytest-xdist worker only, the other kinds in the other."""
    kinds = ("postgresql", "mysql", "redis", "private_postgresql")
    first = {f"{k}_passed": int(k == "postgresql") for k in kinds}
    second = {f"{k}_passed": int(k != "postgresql") * 2 for k in kinds}
    done = check(first, second, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "postgresql 1, private_postgresql 2" in done.stdout
