"""Typed, frozen options whose fields are command-line flags: a field with ``flag`` metadata
owns its flag's name, help and default, so a command's flags, the options they give and the
argv that gives them back are all built from the one dataclass (``RunOptions``, the bench's
``BenchOptions``)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from search.errors import SearchError

T = TypeVar("T")


def flag(
    help: str | Callable[[], str],
    *,
    name: str = "",
    metavar: str | None = None,
    parse: Callable[[str], Any] | None = None,
    choices: Sequence[str] | None = None,
    aliases: Sequence[str] = (),
    required: bool = False,
) -> dict[str, Any]:
    """A field's command-line flag: ``--name`` (default: the field's name with dashes), and
    ``aliases``, older names that still work. ``parse`` (one of ``search.flags``) turns the
    flag's text into a checked value and checks a value given in Python; without it the
    field's type (int, float, else str) does."""
    return {
        "flag": name,
        "help": help,
        "metavar": metavar,
        "parse": parse,
        "choices": choices,
        "aliases": tuple(aliases),
        "required": required,
    }


def csv(kind: Callable[[str], T]) -> Callable[[str], tuple[T, ...]]:
    """A comma-separated list, each item read with ``kind``."""

    def parse(text: str) -> tuple[T, ...]:
        try:
            return tuple(kind(v) for v in text.split(",") if v)
        except ValueError:
            name = getattr(kind, "__name__", "value")
            raise argparse.ArgumentTypeError(
                f"{text!r}: give comma-separated {name} values"
            ) from None

    return parse


def flag_fields(cls: type) -> dict[str, dataclasses.Field]:
    """The fields of an options class that are flags, by field name."""
    return {f.name: f for f in dataclasses.fields(cls) if "flag" in f.metadata}


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata["flag"] or f.name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, cls: type, *, skip: Sequence[str] = ()) -> None:
    """One flag per field of ``cls``; ``skip`` names fields whose flag the caller adds itself.
    A flag not given parses as None, so the field's default applies (``from_args``)."""
    for f in flag_fields(cls).values():
        if f.name in skip:
            continue
        meta = f.metadata
        parser.add_argument(
            f"--{flag_name(f)}",
            *(f"--{alias}" for alias in meta["aliases"]),
            dest=f.name,
            type=meta["parse"] or _scalar(f),
            default=None,
            required=meta["required"],
            choices=meta["choices"],
            help=meta["help"]() if callable(meta["help"]) else meta["help"],
            metavar=meta["metavar"],
        )


def _scalar(f: dataclasses.Field) -> type:
    text = str(f.type)
    return int if "int" in text else float if "float" in text else str


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    """The options the parsed flags give; a flag not given keeps the field's default."""
    values = {}
    for f in flag_fields(cls).values():
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = value
    return cls(**values)


def check(opts: Any) -> None:
    """A value given in Python is valid when its flag's text would be: the same parse."""
    for f in flag_fields(type(opts)).values():
        value, parse = getattr(opts, f.name), f.metadata["parse"]
        if parse is not None and value is not None and value != f.default:
            try:
                parse(_text(value))
            except argparse.ArgumentTypeError as e:
                raise SearchError(f"--{flag_name(f)}: {e}") from None


def argv(opts: Any) -> list[str]:
    """The flags that give ``opts``, defaults left out."""
    out = []
    for f in flag_fields(type(opts)).values():
        value = getattr(opts, f.name)
        if value == f.default or value is None:
            continue
        out += [f"--{flag_name(f)}", _text(value)]
    return out


def _text(value: Any) -> str:
    """A value as its flag's text."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
