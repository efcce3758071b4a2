"""A worker SIGKILLed mid-trial: its launcher fails its trial as soon as it sees the worker
exit (not after the heartbeat grace, here the default 150 s), and a live worker retries it,
resumed from its checkpoint, with its reported epochs intact."""

from __future__ import annotations

import re

from optuna.trial import TrialState

from tests.testing import load, run_args, run_process, smallest


def test_killed_trial_resumes_from_checkpoint(tmp_path, study_name, ledger):
    url = f"sqlite:///{tmp_path}/study.db"
    preset = smallest(tmp_path, 3)
    # Trial 1's worker dies right after its epoch 1 (the second) is validated and saved.
    args = run_args(preset, url, study_name, tmp_path, "--workers", "2", "--n-trials", "6")
    r = run_process(*args, env={"FMNIST_SEARCH_FAULTS": "kill@1:1"})
    assert r.code == 0, r.log
    assert "died" in r.err  # the launcher says a worker was lost, and that it was covered
    trials = load(url, study_name).trials
    dead = trials[1]
    assert dead.state == TrialState.FAIL
    assert re.fullmatch(
        r"worker lost: its worker \(pid \d+\) exited with code -9", dead.user_attrs["fail_reason"]
    ), dead.user_attrs["fail_reason"]
    assert f"trial(s) {dead.number} left RUNNING by an exited worker" in r.err
    assert dead.user_attrs["trained_epochs"] == [0, 1]
    retry = next(t for t in trials if t.user_attrs.get("retry_of") == 1)
    assert retry.state == TrialState.COMPLETE
    assert retry.params == dead.params
    assert retry.user_attrs["config"] == dead.user_attrs["config"]
    assert retry.user_attrs["resumed_from"] == {"trial": 1, "epochs_done": 2}
    assert retry.user_attrs["trained_epochs"] == [2]  # epochs 0 and 1 were not trained again
    assert set(retry.intermediate_values) == {0, 1, 2}
    for epoch in (0, 1):
        assert retry.intermediate_values[epoch] == dead.intermediate_values[epoch]
    row = ledger.check(
        trials,
        backend="sqlite",
        asked=6,
        faults="1 worker SIGKILLed after epoch 2 of 3",
        workers=2,
    )
    assert row["finished"] == 6
