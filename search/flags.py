"""Flag text to checked values: one parse per kind of value, the ``type=`` of every flag that
takes one, so ``--timeout`` means the same wherever it appears. A parse raises
``argparse.ArgumentTypeError``, which argparse turns into one line naming the flag; options
built in Python (``RunOptions``) run the same parse on their values."""

from __future__ import annotations

import math
import re
from argparse import ArgumentTypeError
from collections.abc import Callable

SEED_MAX = 2**32 - 1  # NumPy's generators, behind Optuna's samplers, take no larger seed


def whole(low: int = 0, high: int | None = None) -> Callable[[str | int], int]:
    """A parse for a whole number in ``[low, high]``."""
    need = f"a whole number from {low} to {high}" if high else f"a whole number of {low} or more"

    def parse(value: str | int) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            try:
                n = int(str(value).strip())
            except ValueError:
                raise ArgumentTypeError(f"{value!r} is not a whole number; give {need}") from None
        if n < low or (high is not None and n > high):
            raise ArgumentTypeError(f"{value!r} is out of range; give {need}")
        return n

    return parse


def number(
    *, above: float | None = None, low: float | None = None
) -> Callable[[str | float], float]:
    """A parse for a finite number greater than ``above``, or at least ``low``."""
    if above is not None:
        need, ok = f"a number above {above:g}", lambda x: x > above
    elif low is not None:
        need, ok = f"a number of {low:g} or more", lambda x: x >= low
    else:
        need, ok = "a number", lambda x: True

    def parse(value: str | float) -> float:
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ArgumentTypeError(f"{value!r} is not a number; give {need}") from None
        if not math.isfinite(x):
            raise ArgumentTypeError(f"{value!r} is not a finite number; give {need}")
        if not ok(x):
            raise ArgumentTypeError(f"{value!r} is out of range; give {need}")
        return x

    return parse


seconds = number(above=0)  # a wait or a budget; "nan" and "inf" are refused, not read as "never"
count = whole(1)  # trials, workers, seeds, rows of a table
seed = whole(0, SEED_MAX)


UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", re.IGNORECASE)


def duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit, s, m or h (``15m``, ``1.5h``,
    ``900s``, ``900``); a budget."""
    match = _DURATION.fullmatch(str(text))
    seconds = float(match.group(1)) * UNITS[match.group(2).lower()] if match else math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ArgumentTypeError(
            f"{text!r}: give a positive duration such as 15m, 1h, 900s or 900 (seconds)"
        )
    return seconds
