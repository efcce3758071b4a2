"""SIGINT and SIGTERM: the running trials end FAIL with the signal as reason, nothing stays
RUNNING, and `run` again completes the study without redoing finished trials or epochs: the
stopped trial resumes from its last checkpoint."""

from __future__ import annotations

import signal
import time

import pytest
from optuna.trial import TrialState

from search.run.faults import ENV as FAULTS
from tests.testing import load, run_args, run_process, smallest, start_process

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_signal_marks_trial_and_run_resumes(sig, workers, tmp_path, study_name, ledger):
    url = f"sqlite:///{tmp_path}/study.db"
    preset = smallest(tmp_path, 2)
    args = run_args(preset, url, study_name, tmp_path, "--workers", str(workers), "--n-trials", "5")
    # Trial 2 stalls in its second epoch, its first checkpointed, so the signal lands inside
    # a trial, not between two.
    proc = start_process(*args, env={FAULTS: "stall@2:1"}, log=tmp_path / "first.log")
    inside = wait_inside_trial_2(url, study_name, proc, deadline_s=240)
    if not inside:
        proc.kill()
    assert inside, f"trial 2 never reached its stall: {log_of(tmp_path)}"
    proc.send_signal(sig)
    assert proc.wait(timeout=120) != 0, log_of(tmp_path)
    assert "rerun" in log_of(tmp_path)
    trials = load(url, study_name).trials
    states = {t.number: t.state.name for t in trials}
    assert not [t for t in trials if t.state == TrialState.RUNNING], (states, log_of(tmp_path))
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert 2 in [t.number for t in stopped], (states, log_of(tmp_path))
    assert all(sig.name in t.user_attrs["fail_reason"] for t in stopped)
    before = ledger.snapshot(trials)

    r = run_process(*args)
    assert r.code == 0, r.log
    fault = f"1 {sig.name}" + (" to the launcher" if workers > 1 else "")
    trials = load(url, study_name).trials
    row = ledger.check(
        trials,
        backend="sqlite",
        asked=5,
        faults=fault,
        workers=workers,
        before=before,  # kept, not redone
    )
    assert row["finished"] == 5 and row["lost"] == 0
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == 2]
    assert retry.state in FINISHED and retry.params == stopped_params(trials)
    assert retry.user_attrs["resumed_from"] == {"trial": 2, "epochs_done": 1}
    assert retry.user_attrs["trained_epochs"] == [1]  # epoch 0 was not trained again


def wait_inside_trial_2(url: str, name: str, proc, deadline_s: float) -> bool:
    """Whether trial 2 got to its stall (epoch 0 reported and checkpointed, two trials
    finished) before the deadline or the run's end: only then does the signal surely land
    inside a trial. A machine under load can take minutes to get there."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            trials = load(url, name).trials
        except Exception:
            continue  # the study is not created yet
        running = [t for t in trials if t.state == TrialState.RUNNING and t.number == 2]
        if sum(t.state in FINISHED for t in trials) >= 2 and running:
            if running[0].intermediate_values:
                return True
    return False


def log_of(folder) -> str:
    return (folder / "first.log").read_text()


def stopped_params(trials) -> dict:
    return next(t.params for t in trials if t.number == 2)
