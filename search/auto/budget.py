"""Time budgets: the one parser of ``15m``, ``1h``, ``900s`` and ``900``, and how long this
process has run, so that a command's start-up counts against its budget."""

from __future__ import annotations

import math
import os
import re

from search.errors import SearchError

UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
PATTERN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", re.IGNORECASE)


def parse_budget(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit, s, m or h (``15m``, ``1.5h``,
    ``900s``, ``900``)."""
    match = PATTERN.fullmatch(text)
    seconds = float(match.group(1)) * UNITS[match.group(2).lower()] if match else math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise SearchError(
            f"--budget {text!r}: give a positive duration such as 15m, 1h, 900s or 900 (seconds)"
        )
    return seconds


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
