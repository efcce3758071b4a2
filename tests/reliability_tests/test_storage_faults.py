"""Storage faults: unreachable at start, and a private PostgreSQL server stopped and restarted
(or stopped for good) while a worker runs. The private server lives in a temporary folder;
the shared one on 5432 is never touched."""

from __future__ import annotations

import subprocess
import time

import pytest
from optuna.trial import TrialState

from fmnist_bench.servers import PrivatePostgres
from tests.testing import free_port, load, run_args, run_process, smallest, start_process

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture
def private_pg():
    try:
        pg = PrivatePostgres()
    except RuntimeError as e:
        pytest.skip(str(e))
    try:
        pg.start()
    except subprocess.CalledProcessError as e:
        pg.cleanup()
        pytest.skip(f"cannot start a private PostgreSQL: {e.stderr[-200:]!r}")
    yield pg
    pg.cleanup()


def _wait_finished(url: str, name: str, n: int, proc: subprocess.Popen, timeout=180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if sum(t.state in FINISHED for t in load(url, name).trials) >= n:
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"fewer than {n} trials finished in time")


def test_unreachable_storage_at_start_is_one_line(tmp_path, ledger):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    preset = smallest(tmp_path)
    r = run_process("run", "--study", preset, "--storage", url, "--out", tmp_path, timeout=120)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "cannot open storage" in lines[0]
    assert f"127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}" in lines[0]
    # Refused before anything was written: no trial folders, logs or artifacts beside the preset.
    assert [p.name for p in tmp_path.iterdir()] == [preset.name]
    # No study to check: the row says so instead of checking an empty list.
    ledger.record_no_study(backend="postgresql (closed port)", faults="storage down at start")


@pytest.mark.server("private_postgresql")
def test_restarted_storage_mid_run_loses_nothing(private_pg, tmp_path, study_name, ledger):
    url = private_pg.url
    preset = smallest(tmp_path, 2)
    args = run_args(preset, url, study_name, tmp_path, "--n-trials", "14", "--storage-retry", "120")
    proc = start_process(*args, log=tmp_path / "run.log")
    _wait_finished(url, study_name, 3, proc)
    before = ledger.snapshot(load(url, study_name).trials)
    private_pg.stop()
    time.sleep(5)
    private_pg.start()
    assert proc.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert "unreachable" in (tmp_path / "run.log").read_text()  # it did ride out the outage
    row = ledger.check(
        load(url, study_name).trials,
        backend="postgresql (private server)",
        asked=14,
        faults="server stopped ~5 s mid-run, then restarted",
        before=before,
    )
    assert row["finished"] == 14 and row["lost"] == 0


@pytest.mark.server("private_postgresql")
def test_storage_gone_for_good_stops_with_clear_error(private_pg, tmp_path, study_name, ledger):
    url = private_pg.url
    preset = smallest(tmp_path)
    args = run_args(preset, url, study_name, tmp_path, "--n-trials", "200", "--storage-retry", "6")
    proc = start_process(*args, log=tmp_path / "run.log")
    _wait_finished(url, study_name, 2, proc)
    private_pg.stop()
    assert proc.wait(timeout=180) == 2
    last = (tmp_path / "run.log").read_text().strip().splitlines()[-1]
    assert last.startswith("fmnist-search: error:") and "unreachable" in last
    private_pg.start()
    trials = load(url, study_name).trials
    before = ledger.snapshot(trials)
    assert len(before) >= 2  # everything finished before the outage is still there
    # A trial in flight when the server went stays RUNNING in it; a rerun reaps and retries it.
    asked = len(before) + 1
    rerun = run_args(
        preset, url, study_name, tmp_path, "--n-trials", str(asked), "--heartbeat-grace", "2",
        "--storage-retry", "1",
    )  # fmt: skip
    r = run_process(*rerun, timeout=300)
    assert r.code == 0, r.log
    ledger.check(
        load(url, study_name).trials,
        backend="postgresql (private server)",
        asked=asked,
        faults="server stopped for good; rerun once it is back",
        before=before,
    )
