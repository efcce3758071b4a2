"""K worker processes on every storage: exactly the asked number of finished trials.

The long run (160 trials) is on PostgreSQL, the storage a fleet of workers shares; the other
storages run the same four-worker claim race on fewer trials, enough for every worker to claim
several times beside the others."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from optuna.trial import TrialState

from search.run.faults import ENV as FAULTS
from search.storage import scheme
from tests.testing import STORAGE_ERRORS, load, run_args, run_process, smallest, start_process

TRIALS = {"postgresql": 160}
OTHER_TRIALS = 16  # four claims a worker


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


def test_workers_exit_when_their_launcher_is_killed(tmp_path, study_name):
    """A launcher SIGKILLed forwards no signal: its workers notice and stop on their own."""
    url = f"sqlite:///{tmp_path}/study.db"
    args = run_args(smallest(tmp_path), url, study_name, tmp_path, "--workers", "2",
                    "--n-trials", "4")  # fmt: skip
    launcher = start_process(*args, env={FAULTS: "stall@*"}, log=tmp_path / "run.log")
    deadline = time.monotonic() + 180
    running: list = []
    while time.monotonic() < deadline and len(running) < 2:
        time.sleep(0.5)
        with contextlib.suppress(Exception):
            running = [t for t in load(url, study_name).trials if t.state == TrialState.RUNNING]
    assert len(running) == 2, (tmp_path / "run.log").read_text()
    workers = children(launcher.pid)
    assert len(workers) == 2
    launcher.kill()
    launcher.wait()
    gone_by = time.monotonic() + 20
    while time.monotonic() < gone_by and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(alive(p) for p in workers), (tmp_path / "run.log").read_text()
    trials = load(url, study_name).trials
    # Failed by the SIGTERM with a retry queued, or (a signal swallowed, the worker killed)
    # left to the heartbeat grace, which the next run reaps and retries.
    stopped = [t for t in trials if t.state in (TrialState.FAIL, TrialState.RUNNING)]
    assert len(stopped) == 2
    assert all("SIGTERM" in t.user_attrs["fail_reason"] for t in stopped if t.state.is_finished())


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie left for a dead parent's reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
