"""Run the fault-injection suite (tests/reliability_tests) and write its table: per test and
storage backend, the trials asked for and finished, the faults injected, and the trials lost
or duplicated, as JSON and Markdown, with the commit and machine it ran on.

    python tools/reliability_table.py                      # the whole suite (minutes)
    python tools/reliability_table.py --out docs/results/reliability   # docs/RELIABILITY.md's
    python tools/reliability_table.py -- -k unreachable    # pytest options after --

Each test records its row through the suite's ``ledger`` fixture into the file named by
FMNIST_RELIABILITY_ROWS; a test that failed or skipped before recording keeps its outcome.
docs/RELIABILITY.md shows ``markdown`` of the committed docs/results/reliability/reliability.json
(``python tools/docs_figures.py`` renders it).
Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the checkout's packages, not an installed copy
from fmnist_bench.machine import cpu_model  # noqa: E402

SUITE = "tests/reliability_tests"
ROWS_ENV = "FMNIST_RELIABILITY_ROWS"
DIRTY = " (with uncommitted changes)"
COLUMNS = (
    ("test", "test"),
    ("backend", "storage"),
    ("workers", "workers"),
    ("outcome", "outcome"),
    ("asked", "finished trials asked"),
    ("finished", "finished"),
    ("failed", "failed"),
    ("faults", "faults injected"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("seconds", "seconds"),
)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def collect(lines: list[str]) -> list[dict[str, Any]]:
    """One row per test: its ledger row (when it got that far) with its outcome."""
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        record = json.loads(line)
        kind = record.pop("kind")
        row = rows.setdefault(record["test"], {"test": record["test"]})
        if kind == "outcome" and "outcome" in row:
            continue  # a setup failure and a later record of the same test: keep the first
        row.update(record)
    return list(rows.values())


def _name(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if key == "test":
        return f"`{_name(value)}`"
    if key == "seconds" and value is not None:
        return f"{value:.0f}"
    if key == "outcome" and row.get("reason"):
        return f"{value}: {row['reason']}"
    return "-" if value is None else str(value)


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + " --- |" * len(COLUMNS)
    body = ["| " + " | ".join(_cell(r, k) for k, _ in COLUMNS) + " |" for r in rows]
    t = report["totals"]
    return "\n".join(
        [
            f"Ran on commit `{report['commit']}`{DIRTY if report['dirty'] else ''}, "
            f"{report['started_at']}, on {report['machine']}; `{report['command']}` "
            f"took {report['seconds'] / 60:.0f} min (pytest exit status {report['exit_code']}).",
            "",
            head,
            rule,
            *body,
            "",
            f"In all: {t['finished']} finished trials of {t['asked']} asked; {t['lost']} lost, "
            f"{t['duplicated']} duplicated, {t['running_left']} left RUNNING; tests "
            + ", ".join(f"{n} {o}" for o, n in sorted(t["outcomes"].items()))
            + ".",
        ]
    )


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: sum(r.get(k) or 0 for r in rows)
        for k in ("asked", "finished", "lost", "duplicated", "running_left")
    }
    out["outcomes"] = {}
    for r in rows:
        outcome = r.get("outcome", "unknown")
        out["outcomes"][outcome] = out["outcomes"].get(outcome, 0) + 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", help="folder for the JSON and Markdown (default runs/reliability/<time>)"
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    out = Path(args.out or ROOT / f"runs/reliability/{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    rows_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", SUITE, "-q", "-rs", "-p", "no:cacheprovider"]
    command += args.pytest_args
    started_at = time.strftime("%Y-%m-%d %H:%M %Z")
    start = time.perf_counter()
    code = subprocess.run(command, cwd=ROOT, env=os.environ | {ROWS_ENV: str(rows_path)}).returncode
    seconds = time.perf_counter() - start
    lines = rows_path.read_text().splitlines() if rows_path.exists() else []
    rows = collect(lines)
    report = {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "started_at": started_at,
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "command": shlex.join(
            [
                "python",
                "tools/reliability_table.py",
                *(["--", *args.pytest_args] * bool(args.pytest_args)),
            ]
        ),
        "seconds": seconds,
        "exit_code": code,
        "rows": rows,
        "totals": totals(rows),
    }
    table = markdown(report)
    (out / "reliability.json").write_text(json.dumps(report, indent=2))
    (out / "reliability.md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {out / 'reliability.json'} and {out / 'reliability.md'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
