"""The reliability table: rows joined with outcomes and totals; and one real test of the
suite run through the tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import reliability_table as rt

ROW = {"kind": "row", "test": "t.py::a[sqlite]", "backend": "sqlite", "workers": 4,
       "asked": 160, "finished": 160, "failed": 0, "faults": "none", "lost": 0,
       "duplicated": 0, "running_left": 0}  # fmt: skip


def test_rows_join_outcomes_and_keep_tests_that_never_recorded() -> None:
    lines = [
        json.dumps(ROW),
        json.dumps({"kind": "outcome", "test": ROW["test"], "outcome": "passed", "seconds": 3.0,
                    "reason": None}),
        json.dumps({"kind": "outcome", "test": "t.py::b[redis]", "outcome": "skipped",
                    "seconds": 0.0, "reason": "redis server not reachable"}),
    ]  # fmt: skip
    rows = rt.collect(lines)
    assert [r["test"] for r in rows] == ["t.py::a[sqlite]", "t.py::b[redis]"]
    assert rows[0]["outcome"] == "passed" and rows[0]["finished"] == 160
    totals = rt.totals(rows)
    assert (totals["asked"], totals["finished"], totals["lost"]) == (160, 160, 0)
    assert totals["outcomes"] == {"passed": 1, "skipped": 1}
    report = dict(commit="abc", dirty=False, started_at="now", machine="m", command="c")
    report |= dict(seconds=60, exit_code=0, rows=rows, totals=totals)
    table = rt.markdown(report)
    assert "| `a[sqlite]` | sqlite | 4 | passed | 160 | 160 | 0 | none | 0 | 0 | 3 |" in table
    assert "skipped: redis server not reachable" in table
    assert "commit `abc`" in table and "160 finished trials of 160 asked" in table


@pytest.mark.slow
def test_the_tool_runs_a_test_of_the_suite_and_writes_its_row(tmp_path: Path) -> None:
    code = rt.main(["--out", str(tmp_path), "--", "-k", "unreachable"])
    assert code == 0
    report = json.loads((tmp_path / "reliability.json").read_text())
    (row,) = report["rows"]
    assert row["test"].endswith("test_unreachable_storage_at_start_is_one_line")
    assert row["outcome"] == "passed" and row["faults"] == "storage down at start"
    assert row["lost"] == row["duplicated"] == row["running_left"] == 0
    assert len(report["commit"]) == 40
    assert (tmp_path / "reliability.md").read_text().startswith("Ran on commit")
