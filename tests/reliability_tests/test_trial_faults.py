"""Out-of-memory, runtime errors and diverging losses fail their own trial only."""

from __future__ import annotations

from optuna.trial import TrialState

from search.run.faults import ENV as FAULTS
from tests.testing import load, run_args, run_process, smallest


def test_bad_trials_fail_with_reason_and_the_good_ones_finish(tmp_path, study_name, ledger):
    url = f"sqlite:///{tmp_path}/study.db"
    args = run_args(smallest(tmp_path), url, study_name, tmp_path, "--n-trials", "12")
    r = run_process(*args, env={"FMNIST_SEARCH_FAULTS": "oom@2,nan@5,error@8"})
    assert r.code == 0, r.log
    trials = load(url, study_name).trials
    by_number = {t.number: t for t in trials}
    assert by_number[2].state == TrialState.FAIL
    assert "OutOfMemoryError" in by_number[2].user_attrs["fail_reason"]
    assert by_number[5].state == TrialState.FAIL
    assert "loss became nan" in by_number[5].user_attrs["fail_reason"]
    assert by_number[8].state == TrialState.FAIL
    assert "RuntimeError" in by_number[8].user_attrs["fail_reason"]
    row = ledger.check(
        trials, backend="sqlite", asked=12, faults="1 OOM, 1 NaN loss, 1 RuntimeError"
    )
    assert row["finished"] == 12 and row["failed"] == 3
    assert len(trials) == 15
    # A worker's memory does not grow with the trials it has run.
    rss = [t.user_attrs["max_rss_mb"] for t in sorted(trials, key=lambda t: t.number)]
    assert rss[-1] - rss[3] < 150, rss


def test_a_device_fault_fails_the_trial_as_infrastructure_and_replaces_its_worker(
    tmp_path, study_name, ledger
):
    from search.run.device_faults import INFRASTRUCTURE
    from search.run.launcher import threads_per_worker

    url = f"sqlite:///{tmp_path}/study.db"
    args = run_args(smallest(tmp_path), url, study_name, tmp_path, "--workers", "2",
                    "--n-trials", "6")  # fmt: skip
    r = run_process(*args, env={"FMNIST_SEARCH_FAULTS": "cuda@1"})
    assert r.code == 0, r.log
    assert "exited after a device fault; starting a fresh worker" in r.err, r.log
    trials = load(url, study_name).trials
    faulted = next(t for t in trials if t.number == 1)
    assert faulted.state == TrialState.FAIL
    assert faulted.user_attrs["failure"] == INFRASTRUCTURE
    assert "illegal memory access" in faulted.user_attrs["fail_reason"]
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert retry.state == TrialState.COMPLETE and retry.params == faulted.params
    row = ledger.check(trials, backend="sqlite", asked=6, faults="1 CUDA error", workers=2)
    assert row["finished"] == 6 and row["failed"] == 1 and row["duplicated"] == 0
    # Every worker, the replacement too, ran on its share of the cores.
    assert {t.user_attrs["threads"] for t in trials} == {threads_per_worker(2)}
def test_an_error_before_training_fails_its_trial_in_one_line(tmp_path, study_name):
    # Every trial's sampling raises, as a sampler that rejects a value does.
    url = f"sqlite:///{tmp_path}/study.db"
    r = run_process(
        *run_args(smallest(tmp_path), url, study_name, tmp_path), env={FAULTS: "sample@*"}
    )
    assert r.code == 2, r.log
    assert "failed in a row" in r.error and "ValueError" in r.error
    assert "Traceback" not in r.err
    trials = load(url, study_name).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 3  # none left RUNNING
    assert all(t.user_attrs["fail_reason"].startswith("ValueError: ") for t in trials)
