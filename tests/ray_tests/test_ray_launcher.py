"""`run --ray` on a real two-node Ray cluster against PostgreSQL: placement on both nodes, a
node lost mid-trial, a run through the gRPC storage proxy, and a second run of a study whose
named worker actors are on the cluster already."""

from __future__ import annotations

import os
import signal
import time

import pytest
from optuna.trial import TrialState

from search.run.faults import ENV as FAULTS
from search.storage.liveness import WORKER_KEY
from tests.testing import load, run_args, run_process, smallest, start_process

# One two-node cluster for the session: pyproject's --dist loadfile runs this file's tests in
# one test process.
pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.server("ray")]  # a two-node cluster
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def running(trials) -> list[int]:
    return [t.number for t in trials if t.state == TrialState.RUNNING]


def wait_for(condition, url: str, name: str, log, timeout: float = 180) -> list:
    """The study's trials once ``condition(trials)`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            trials = load(url, name).trials
        except Exception:
            continue
        if condition(trials):
            return trials
    raise AssertionError(f"timed out; the run's log ends: {log.read_text()[-3000:]}")


def assert_exact(trials, n: int) -> None:
    """``n`` finished trials, unique numbers, nothing left RUNNING."""
    assert sum(t.state in FINISHED for t in trials) == n
    assert len({t.number for t in trials}) == len(trials)
    assert not running(trials)


def test_lost_node_trial_resumes_on_the_other(cluster, join, postgresql, study_name, tmp_path):
    # Every trial on the doomed node stalls in its epoch 1, after epoch 0 is checkpointed.
    second = join("second", **{FAULTS: "stall@*:1"})
    args = run_args(
        smallest(tmp_path, 3),
        postgresql,
        study_name,
        tmp_path,
        "--n-trials",
        "6",
        "--heartbeat-grace",
        "8",
        "--storage-retry",
        "5",
    )
    proc = start_process(
        *args, "--ray", cluster.address, "--workers", "4", log=tmp_path / "run.log"
    )

    def stalled(trials) -> list[int]:
        return [
            t.number
            for t in trials
            if t.state == TrialState.RUNNING
            and t.user_attrs.get("node") == "second"
            and t.user_attrs.get("trained_epochs") == [0]
            and t.user_attrs.get("ckpt_bytes")  # set once epoch 0's checkpoint is in place
        ]

    lost = stalled(wait_for(stalled, postgresql, study_name, tmp_path / "run.log"))
    second.kill()
    assert proc.wait(timeout=240) == 0, (tmp_path / "run.log").read_text()[-3000:]
    trials = load(postgresql, study_name).trials
    assert_exact(trials, 6)
    by_number = {t.number: t for t in trials}
    for number in lost:
        assert by_number[number].state == TrialState.FAIL
        assert "no heartbeat" in by_number[number].user_attrs["fail_reason"]
        retry = [t for t in trials if t.user_attrs.get("retry_of") == number]
        assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
        assert retry[0].user_attrs["node"] == "head"
        assert retry[0].user_attrs["resumed_from"] == {"trial": number, "epochs_done": 1}
        assert retry[0].user_attrs["trained_epochs"] == [1, 2]  # epoch 0 was not redone


def test_ctrl_c_then_resume_through_the_grpc_proxy_on_both_nodes(
    cluster, join, postgresql, proxy, study_name, tmp_path
):
    """Four workers through the storage proxy; a worker process killed in trial 3 has that
    trial failed at once by its actor, not after the grace; Ctrl-C on the driver while trial 4
    stalls leaves nothing RUNNING; the same command again finishes the study on both nodes."""
    join("second")
    args = [*run_args(smallest(tmp_path), proxy, study_name, tmp_path, "--n-trials", "12")]
    args += ["--ray", cluster.address, "--workers", "4"]
    proc = start_process(*args, env={FAULTS: "stall@3,stall@4"}, log=tmp_path / "first.log")
    trials = wait_for(
        lambda trials: {3, 4} <= set(running(trials)), proxy, study_name, tmp_path / "first.log"
    )
    pid = int(trials[3].system_attrs[WORKER_KEY].rpartition("/")[2])
    os.kill(pid, signal.SIGKILL)  # the default grace is 150 s: well past this wait
    killed = wait_for(
        lambda trials: trials[3].state == TrialState.FAIL, proxy, study_name,
        tmp_path / "first.log", timeout=60,
    )[3]  # fmt: skip
    assert killed.user_attrs["fail_reason"] == (
        f"worker lost: its worker (pid {pid}) exited with code -9"
    )
    # The workers are named actors: the same study started again meanwhile is refused before
    # it touches the study, so the plan the running workers read stays theirs.
    plan = load(postgresql, study_name).user_attrs["run_plan"]
    again = run_process(*args, "--n-trials", "13", timeout=120)
    assert again.code == 2 and f"actors {study_name}/w0, {study_name}/w1" in again.error
    assert load(postgresql, study_name).user_attrs["run_plan"] == plan
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 2
    assert "rerun the same command" in (tmp_path / "first.log").read_text()
    trials = load(postgresql, study_name).trials
    assert not running(trials)
    assert "SIGINT" in trials[4].user_attrs["fail_reason"]
    before = {t.number: t.params for t in trials if t.state in FINISHED}

    r = run_process(*args, timeout=300)
    assert r.code == 0, r.log
    assert "every node sees" in r.err  # the one warning about --out
    trials = load(postgresql, study_name).trials  # the database behind the proxy
    assert_exact(trials, 12)
    assert all(trials[n].params == params for n, params in before.items())
    assert {t.user_attrs["node"] for t in trials if t.state in FINISHED} == {"head", "second"}
