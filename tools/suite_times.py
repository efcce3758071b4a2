"""How long the tests take: the fast tier (``pytest -m "not slow"``, for editing) and the full
suite (the README's test command, which ``.ci/run`` calls), one after the other, from this
checkout with this interpreter. Writes the wall seconds and pytest's closing line of each as
JSON, with the commit, the cores and the load before each run, for README.md's figures region
(``tools/docs_figures.py``).

    python tools/suite_times.py --json docs/results/suite-times.json

Run it on an otherwise idle machine: other work on the cores slows both tiers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the checkout's packages, not an installed copy
from fmnist_bench.machine import cpu_flags, cpu_model  # noqa: E402

TIERS = {"fast": ["-m", "not slow"], "full": []}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def run_tier(args: list[str]) -> dict[str, Any]:
    """One pytest run: its wall seconds, exit code, closing line and the tests that failed
    (``-ra``'s FAILED / ERROR lines), so a failed run names them without a rerun."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {
        "seconds": time.perf_counter() - start,
        "exit_code": done.returncode,
        "summary": lines[-1].strip("= ") if lines else "",
        "failed": [line for line in lines if line.startswith(("FAILED ", "ERROR "))],
        "load_average_before": load,
    }


def markdown(report: dict[str, Any]) -> str:
    """The sentence README.md shows; the CPU where the file names it (files before it did
    not): two cores ran the full suite in 11.0 min at 03a78c0 on one machine and 20.6 min at
    70adfc0 on an AVX2 EPYC, so a figure without its CPU says little."""
    fast, full = report["tiers"]["fast"], report["tiers"]["full"]
    machine = f"{report['cpus']} cores"
    if report.get("cpu"):
        machine += f" ({', '.join([report['cpu'], *report.get('cpu_flags', [])])})"
    return (
        f"The fast tier took {fast['seconds']:.0f} s ({fast['summary']}) and the full suite "
        f"{full['seconds'] / 60:.1f} min ({full['summary']}) on {machine}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures")
    a = parser.parse_args(argv)
    commit = _git("rev-parse", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    report = {
        "argv": ["python", "tools/suite_times.py", *(argv or sys.argv[1:])],
        "git_commit": commit,
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),  # which of AVX2, AVX-512, bf16 and AMX it lists
        "tiers": {name: run_tier(args) for name, args in TIERS.items()},
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return max(t["exit_code"] for t in report["tiers"].values())


if __name__ == "__main__":
    sys.exit(main())
