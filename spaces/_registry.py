"""Search spaces by name: importing a space's module registers it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fmnist.config import RunConfig
from spaces.dims import Categorical, Dim

CHOICE = "space"  # the parameter that picks the family in a study over several spaces

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


def combine(names: Sequence[str]) -> Space:
    """One space over several families, named ``resnet+mobilenet``: a categorical ``space``
    parameter picks the family first, then that family's own parameters are sampled under
    their usual names; the shared ``aug.*`` and ``optim.*`` parameters keep one history
    across families. Not registered: a preset's ``spaces`` list makes it."""
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"spaces: list two or more different search spaces, got {list(names)}")
    members = {name: get(name) for name in names}
    dims: dict[str, Dim] = {CHOICE: Categorical(tuple(names), default=names[0])}
    for space in members.values():
        for name, dim in space.dims.items():
            # Defaults may differ (each family's report recipe); the first member's stands.
            if replace(dims.setdefault(name, dim), default=None) != replace(dim, default=None):
                raise ValueError(f"spaces: parameter {name!r} differs between {', '.join(names)}")

    def build(sample: Sample, base: RunConfig) -> RunConfig:
        return members[sample(CHOICE)].build(sample, base)

    first = members[names[0]]
    # Versions only go up, so their sum changes whenever a member's meaning does.
    version = sum(space.version for space in members.values())
    return Space("+".join(names), first.family, version, dims, build)
