"""K worker processes on every storage: exactly the asked number of finished trials."""

from __future__ import annotations

from search.storage import scheme
from tests.testing import STORAGE_ERRORS, load, run_args, run_process, smallest


def test_four_workers_finish_exactly_160_trials(storage_url, study_name, tmp_path, ledger):
    preset = smallest(tmp_path)
    r = run_process(
        *run_args(preset, storage_url, study_name, tmp_path, "--workers", "4", "--n-trials", "160")
    )
    log = r.out + r.err
    assert r.code == 0, log[-3000:]
    for error in STORAGE_ERRORS:
        assert error not in log
    trials = load(storage_url, study_name).trials
    row = ledger.check(trials, backend=scheme(storage_url), asked=160, faults="none", workers=4)
    assert row["finished"] == 160
    # Every worker took part: trial lines carry the worker's prefix.
    assert {f"[w{i}]" for i in range(4)} <= {line[:4] for line in r.out.splitlines()}
