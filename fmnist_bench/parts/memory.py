"""Part d: the peak resident memory of a worker process as a user starts it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fmnist_bench.bench import GIB, Bench, show
from search.errors import SearchError

# A child forked from this process carries this process's resident pages in its ru_maxrss
# until it execs, so the measured command is started by a fresh, small interpreter instead.
_GO_BETWEEN = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def peak_rss(argv: Sequence[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``argv`` as a child process: its own peak resident memory (``ru_maxrss`` from
    ``wait4``, so no other process counts) and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "rusage", Path(tmp) / "stderr"
        start = time.perf_counter()
        with err.open("w") as err_file:
            subprocess.run(
                [sys.executable, "-c", _GO_BETWEEN, str(out), *argv],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                check=False,
            )
        seconds = time.perf_counter() - start
        maxrss_kib, code = (int(v) for v in out.read_text().split())
        tail = err.read_text()[-2000:] if code else ""
    return {
        "argv": list(argv),
        "exit_code": code,
        "peak_rss_bytes": maxrss_kib * 1024,  # KiB on Linux
        "seconds": seconds,
        "stderr_tail": tail,
    }


def run(b: Bench) -> dict[str, Any]:
    """``fmnist-search run`` on fresh storage, as a worker process of its own."""
    opts = b.opts
    argv = b.fresh_study("memory", opts.study, n_trials=opts.memory_trials).command()
    out = peak_rss(argv) | {"trials": opts.memory_trials}
    if out["exit_code"] != 0:
        raise SearchError(f"the memory part's worker failed: {out['stderr_tail'][-500:]}")
    show(
        "d. peak resident memory of a worker process",
        ["worker", "trials", "peak RSS GiB", "seconds"],
        [[f"run --study {opts.study}", out["trials"], out["peak_rss_bytes"] / GIB, out["seconds"]]],
    )
    return {"memory": out}
