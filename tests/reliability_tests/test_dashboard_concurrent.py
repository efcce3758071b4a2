"""optuna-dashboard reading a SQLite study while four workers write to it: no worker sees a
storage error, and the dashboard keeps answering."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

from search.storage import open_storage
from tests.testing import (
    ROOT,
    STORAGE_ERRORS,
    command_line,
    environment,
    free_port,
    load,
    run_args,
    smallest,
    start_process,
)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


TRIALS = 24  # six claims a worker, with the API polled every half second


def test_dashboard_beside_four_writing_workers(tmp_path, study_name, ledger):
    url = f"sqlite:///{tmp_path}/study.db"
    open_storage(url)  # the file the dashboard reads (it refuses one that is not there)
    port = free_port()
    dash = subprocess.Popen(
        command_line("dashboard", "--storage", url, "--port", port),
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "dash.log", "w"),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the dashboard first, so it reads while workers write
        assert dash.poll() is None, (tmp_path / "dash.log").read_text()
        try:
            _get(f"http://127.0.0.1:{port}/api/studies")
            break
        except OSError:
            time.sleep(0.5)
    preset = smallest(tmp_path)
    args = run_args(preset, url, study_name, tmp_path, "--workers", "4", "--n-trials", str(TRIALS))
    runner = start_process(*args, log=tmp_path / "run.log")
    answers = 0
    try:
        while runner.poll() is None:
            time.sleep(0.5)
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")
            except OSError:
                continue  # still starting
            answers += 1
            for s in studies["study_summaries"]:
                if s["study_name"] == study_name:
                    _get(f"http://127.0.0.1:{port}/api/studies/{s['study_id']}?after=0")
    finally:
        dash.terminate()
        dash.wait(timeout=30)
    log = (tmp_path / "run.log").read_text()
    assert runner.returncode == 0, log[-3000:]
    for error in STORAGE_ERRORS:
        assert error not in log
    assert answers >= 3
    assert "Traceback" not in (tmp_path / "dash.log").read_text()
    row = ledger.check(
        load(url, study_name).trials,
        backend="sqlite",
        asked=TRIALS,
        faults="optuna-dashboard polling its API",
        workers=4,
    )
    assert row["finished"] == TRIALS
