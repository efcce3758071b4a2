"""Model families by name: importing a family's module registers its builder."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

Builder = Callable[..., nn.Module]
_BUILDERS: dict[str, Builder] = {}


def register(family: str) -> Callable[[Builder], Builder]:
    def wrap(fn: Builder) -> Builder:
        if family in _BUILDERS:
            raise ValueError(f"model family {family!r} is registered twice")
        _BUILDERS[family] = fn
        return fn

    return wrap


def families() -> list[str]:
    return sorted(_BUILDERS)


def build_model(config, num_classes: int = 10) -> nn.Module:
    """The network a model config describes."""
    try:
        builder = _BUILDERS[config.family]
    except KeyError:
        raise ValueError(
            f"unknown model family {config.family!r}; known: {', '.join(families())}"
        ) from None
    return builder(config, num_classes)
