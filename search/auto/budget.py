"""Time budgets as people write them (``search.flags.duration`` reads them), and how long this
process has run, so that a command's start-up counts against its budget."""

from __future__ import annotations

import os

from search.flags import UNITS


def text(seconds: float) -> str:
    """A budget as people write it: ``15m``, ``1h``, ``90s``."""
    for unit in ("h", "m"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{seconds / UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


def process_age() -> float:
    """Seconds since this process started (0 where /proc cannot tell): the interpreter's and
    the imports' start-up, which a budget counts."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
