"""The report's three networks as complete run configs, usable by name: ``--config resnet``."""

from __future__ import annotations

from pathlib import Path

from fmnist.config import ConfigError

HERE = Path(__file__).parent


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.toml"))


def resolve(name_or_path: str) -> Path:
    """A shipped config's path by name, or the given path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    if (HERE / f"{name_or_path}.toml").is_file():
        return HERE / f"{name_or_path}.toml"

    raise ConfigError(
        f"no config file or shipped config named {name_or_path!r}; shipped: {', '.join(names())}"
    )
