"""Which parameters varied between the trials a table shows: those are listed first and in
full, the constant ones named once, so the values that tell trials apart are never cut off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial

from search.text import fmt

_ABSENT = object()  # a parameter a trial did not sample (another branch of a combined space)


def split_params(trials: Sequence[FrozenTrial]) -> tuple[list[str], dict[str, Any]]:
    """The parameters whose value differs between ``trials`` (in sampling order), and the
    others with their one value. With a single trial every parameter counts as varied."""
    names = list(dict.fromkeys(name for t in trials for name in t.params))
    varying, constant = [], {}
    for name in names:
        values = {repr(t.params.get(name, _ABSENT)) for t in trials}
        if len(trials) > 1 and len(values) == 1:
            constant[name] = trials[0].params[name]
        else:
            varying.append(name)
    return varying, constant


def labels(names: Sequence[str]) -> dict[str, str]:
    """Each name without its branch prefix (``optim.lr`` -> ``lr``) where that stays unique."""
    short = {n: n.split(".", 1)[-1] for n in names}
    counts: dict[str, int] = {}
    for s in short.values():
        counts[s] = counts.get(s, 0) + 1
    return {n: s if counts[s] == 1 else n for n, s in short.items()}


def pairs(values: dict[str, Any], names: Sequence[str]) -> list[str]:
    """``name=value`` for each of ``names`` that ``values`` holds, by short label."""
    label = labels(names)
    return [f"{label[n]}={fmt(values[n])}" for n in names if n in values]


def wrap(items: Sequence[str], width: int) -> list[str]:
    """``items`` joined by ", " into lines of at most ``width`` characters, breaking only
    between items (an item longer than a line gets a line of its own, whole)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            if lines:
                lines[-1] += ","
            lines.append(item)
    return lines or [""]
