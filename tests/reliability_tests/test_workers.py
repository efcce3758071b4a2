"""K worker processes on every storage: exactly the asked number of finished trials."""

from __future__ import annotations

from tests.reliability_tests.conftest import TINY, backend_of, cli, load, run_args

STORAGE_ERRORS = (
    "database is locked",
    "OperationalError",
    "Traceback",
    "unreachable",
    "ConnectionError",
)


def test_four_workers_finish_exactly_160_trials(storage_url, study_name, tmp_path, ledger):
    r = cli(
        *run_args(TINY, storage_url, study_name, tmp_path, "--workers", "4", "--n-trials", "160")
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    for error in STORAGE_ERRORS:
        assert error not in log
    trials = load(storage_url, study_name).trials
    row = ledger.check(trials, backend=backend_of(storage_url), asked=160, faults="none", workers=4)
    assert row["finished"] == 160
    # Every worker took part: trial lines carry the worker's prefix.
    assert {f"[w{i}]" for i in range(4)} <= {line[:4] for line in r.stdout.splitlines()}
