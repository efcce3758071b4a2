"""``fmnist-bench scale`` for real, tiny: simulated worker processes on PostgreSQL directly and
on SQLite through a storage proxy process, and a SIGKILL drill. Slow: each of the three cells
starts a few Python processes (and the proxy), and the drill waits out a 3 s grace."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fmnist_bench.options import ScaleOptions
from fmnist_bench.scale import COLUMNS
from search.errors import SearchError
from tests.testing import SERVERS, unreachable

TINY = ("--prefill", "20", "--trials", "10", "--epoch-s", "0.2",
        "--grace-s", "3")  # fmt: skip


def cells(bench, tmp_path, *args: str) -> list[dict]:
    if why := unreachable("postgresql"):
        pytest.skip(why)
    # The shared server: a private one (the default) costs an initdb; 4 workers fit its limit.
    r = bench("scale", *TINY, "--postgresql", SERVERS["postgresql"], *args, "--json",
              tmp_path / "scale.json")  # fmt: skip
    assert r.code == 0, r.log
    records = json.loads((tmp_path / "scale.json").read_text())["cells"]
    for c in records:
        assert "error" not in c, c
        assert set(COLUMNS) <= c.keys()
        assert c["exact"] and c["finished"] == c["target"] == c["study_at_start"] + 10
        assert c["unique_numbers"] and c["configs_twice"] == 0 and c["left_running"] == 0
        assert c["false_reaps"] == 0 and not c["timed_out"]
        # About 100 MB direct (Optuna, SQLAlchemy, psycopg, Alembic), 85 through the proxy:
        # torch (+470 MB) or scipy.stats (+64) in a worker would pass 130.
        assert not c["torch_in_workers"] and c["worker_rss_mb"] < 130
        assert c["lock_hold_ms"]["n"] >= 10 and c["lock_hold_ms"]["p99"] > 0
        # The holder's own CPU is part of its hold, counted on every hold.
        cpu, hold = c["lock_hold_cpu_ms"], c["lock_hold_ms"]
        assert cpu["n"] == hold["n"] and 0 < cpu["p50"] <= hold["p99"]
        assert c["sampler_ms"]["n"] >= 10 and c["trials_per_s"] > 0
    return records


@pytest.mark.slow
def test_a_cell_on_postgresql_and_on_sqlite_through_the_proxy(bench, tmp_path):
    # Three workers in two processes: worker 0 alone in one, 1 and 2 threads of the other.
    args = ("--storages", "postgresql,sqlite-proxy", "--workers", "3", "--processes", "2",
            "--work-dir", tmp_path / "work")  # fmt: skip
    direct, proxied = cells(bench, tmp_path, *args)
    assert direct["storage"] == "postgresql" and direct["connections"] >= 2
    assert direct["proxy_cpu_s"] is None and direct["exit_codes"] == [0, 0]
    assert proxied["storage"] == "sqlite-proxy" and proxied["proxy_cpu_s"] > 0
    for folder in (tmp_path / "work").glob("cell-*"):
        pids = [json.loads((folder / f"w{i}.jsonl").read_text().splitlines()[0])["pid"]
                for i in range(3)]  # fmt: skip
        assert pids[0] != pids[1] == pids[2]
    for c in (direct, proxied):
        assert c["processes"] == 2 and c["ran"] == 10

    # As if cut short before its end, one cell from an earlier commit: the same command keeps
    # both cells, runs neither again (the second would run as the first ran) and ends the file.
    path = tmp_path / "scale.json"
    data = json.loads(path.read_text())
    assert direct["commit"] == proxied["commit"] == data["machine"]["git_commit"]
    data["partial"], data["cells"][0]["commit"] = True, "an-earlier-commit"
    path.write_text(json.dumps(data))
    assert cells(bench, tmp_path, *args) == data["cells"]  # the very records, commits and all
    assert not json.loads(path.read_text())["partial"]


@pytest.mark.slow
def test_a_killed_worker_s_trial_alone_is_reaped_and_retried(bench, tmp_path):
    (c,) = cells(bench, tmp_path, "--storages", "sqlite-proxy", "--workers", "", "--drills",
                 "kill", "--drill-workers", "4", "--drill-prefill", "20")  # fmt: skip
    assert c["drill"] == "kill" and len(c["killed"]) == 1 and -9 in c["exit_codes"]
    assert c["reaped"] == c["failed"] == 1  # its RUNNING trial, FAIL, then retried to the end


def test_unknown_storage_or_drill_is_one_line():
    with pytest.raises(SearchError, match="--storages mongo: unknown; choose from postgresql"):
        ScaleOptions(storages=("mongo",))
    with pytest.raises(SearchError, match="--grace-s nan: must be above 0"):
        ScaleOptions(grace_s=float("nan"))


def test_a_cut_short_run_of_other_options_is_not_continued(bench, tmp_path):
    """Its cells would not be this command's: one line, before any server starts."""
    path = tmp_path / "scale.json"
    options = json.loads(json.dumps(dataclasses.asdict(ScaleOptions(trials=50))))
    path.write_text(json.dumps({"partial": True, "options": options, "cells": []}))
    r = bench("scale", "--trials", "10", "--json", path)
    assert r.code == 2 and len(r.error.splitlines()) == 1
    assert "cut short with other options (trials: 50 there, 10 here)" in r.error
    assert json.loads(path.read_text())["options"]["trials"] == 50  # left as it was
