"""``fmnist-bench scale`` for real, tiny: simulated worker processes on PostgreSQL directly and
on SQLite through a storage proxy process, and a SIGKILL drill. Slow: each of the three cells
starts a few Python processes (and the proxy), and the drill waits out a 3 s grace."""

from __future__ import annotations

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
        assert not c["torch_in_workers"] and c["worker_rss_mb"] < 200
        assert c["lock_hold_ms"]["n"] >= 10 and c["lock_hold_ms"]["p99"] > 0
        # The holder's own CPU is part of its hold, counted on every hold.
        cpu, hold = c["lock_hold_cpu_ms"], c["lock_hold_ms"]
        assert cpu["n"] == hold["n"] and 0 < cpu["p50"] <= hold["p99"]
        assert c["sampler_ms"]["n"] >= 10 and c["trials_per_s"] > 0
    return records


@pytest.mark.slow
def test_a_cell_on_postgresql_and_on_sqlite_through_the_proxy(bench, tmp_path):
    direct, proxied = cells(bench, tmp_path, "--storages", "postgresql,sqlite-proxy",
                            "--workers", "3")  # fmt: skip
    assert direct["storage"] == "postgresql" and direct["connections"] >= 3
    assert direct["proxy_cpu_s"] is None and direct["exit_codes"] == [0, 0, 0]
    assert proxied["storage"] == "sqlite-proxy" and proxied["proxy_cpu_s"] > 0


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
