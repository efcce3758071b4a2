"""K worker processes on every storage: exactly the asked number of finished trials.

The long run (160 trials) is on PostgreSQL, the storage a fleet of workers shares; the other
storages run the same four-worker claim race on fewer trials, enough for every worker to claim
several times beside the others."""

from __future__ import annotations

from search.storage import scheme
from tests.testing import STORAGE_ERRORS, load, run_args, run_process, smallest

TRIALS = {"postgresql": 160}
OTHER_TRIALS = 24


def test_four_workers_finish_exactly_the_asked_trials(storage_url, study_name, tmp_path, ledger):
    asked = TRIALS.get(scheme(storage_url), OTHER_TRIALS)
    preset = smallest(tmp_path)
    r = run_process(
        *run_args(preset, storage_url, study_name, tmp_path, "--workers", "4", "--n-trials", asked)
    )
    log = r.out + r.err
    assert r.code == 0, log[-3000:]
    for error in STORAGE_ERRORS:
        assert error not in log
    trials = load(storage_url, study_name).trials
    row = ledger.check(trials, backend=scheme(storage_url), asked=asked, faults="none", workers=4)
    assert row["finished"] == asked
    # Every worker took part: trial lines carry the worker's prefix.
    assert {f"[w{i}]" for i in range(4)} <= {line[:4] for line in r.out.splitlines()}
