"""Search spaces by name: importing a space's module registers it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fmnist.config import RunConfig
from spaces.dims import Dim

Sample = Callable[[str], Any]  # name -> value; search/ backs it with an Optuna trial


@dataclass(frozen=True)
class Space:
    """Define-by-run space of one model family. ``build(sample, base)`` asks ``sample`` for
    each parameter it needs (by its stable, prefixed name) and returns the trial's config.
    ``version`` goes up whenever a parameter's meaning changes, so old studies refuse to mix."""

    name: str
    family: str
    version: int
    dims: dict[str, Dim]
    build: Callable[[Sample, RunConfig], RunConfig]

    def defaults(self) -> dict[str, Any]:
        return {name: dim.default for name, dim in self.dims.items()}


_SPACES: dict[str, Space] = {}


def register(space: Space) -> Space:
    if space.name in _SPACES:
        raise ValueError(f"search space {space.name!r} is registered twice")
    _SPACES[space.name] = space
    return space


def names() -> list[str]:
    return sorted(_SPACES)


def get(name: str) -> Space:
    try:
        return _SPACES[name]
    except KeyError:
        raise KeyError(f"unknown search space {name!r}; known: {', '.join(names())}") from None
