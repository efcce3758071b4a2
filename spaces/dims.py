"""The kinds of search dimension, each with a default so a space also describes one model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Categorical:
    choices: tuple[Any, ...]
    default: Any

    def describe(self) -> str:
        return "{" + ", ".join(str(c) for c in self.choices) + "}"

    def contains(self, value: Any) -> bool:
        return value in self.choices


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    default: int
    log: bool = False

    def describe(self) -> str:
        return f"int [{self.low}, {self.high}]" + (" log" if self.log else "")

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    default: float
    log: bool = False

    def describe(self) -> str:
        return f"float [{self.low:g}, {self.high:g}]" + (" log" if self.log else "")

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )


Dim = Categorical | Int | Float


def from_override(name: str, base: Dim, value: Any) -> Dim:
    """A preset's narrower range for ``name``: a list of choices, or {low, high[, log]}, inside
    the space's own; a space that needs other values gets them in a new version, so that
    studies of one space version searched the same values."""
    if isinstance(value, list):
        if not value:
            raise ValueError(f"ranges.{name}: needs at least one choice")
        _inside(name, base, value, value)
        default = base.default if base.default in value else value[0]
        return Categorical(tuple(value), default)
    if (
        isinstance(value, dict)
        and isinstance(base, Int | Float)
        and set(value) <= {"low", "high", "log"}
        and {"low", "high"} <= set(value)
    ):
        low, high = value["low"], value["high"]
        _inside(name, base, value, [low, high])
        if low > high:
            raise ValueError(f"ranges.{name}: low {low} is above high {high}")
        cls = type(base)
        default = min(max(base.default, low), high)
        return cls(low, high, default, value.get("log", base.log))
    raise ValueError(
        f"ranges.{name}: expected a list of choices"
        + (" or a table {low, high}" if isinstance(base, Int | Float) else "")
    )


def _inside(name: str, base: Dim, value: Any, ends: list[Any]) -> None:
    for v in ends:
        if not base.contains(v):
            raise ValueError(
                f"ranges.{name} = {value!r}: {v!r} is outside the space's {base.describe()}; "
                "[ranges] only narrows a space"
            )
