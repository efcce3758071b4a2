"""Study presets: strict TOML data in ``studies/`` (or a user's file) that states what differs
from the defaults. ``read`` parses one; ``search.study.resolve`` checks and resolves it."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import studies
from fmnist.config import ConfigError, from_dict
from search.errors import SearchError
from search.study.constraints import Constraints
from search.study.objectives import ACCURACY

STUDIES_DIR = Path(studies.__file__).parent


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "tpe"
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrunerSpec:
    name: str = "hyperband"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyPreset:
    space: str = ""  # one search space; or
    spaces: list[str] = field(default_factory=list)  # several: a `space` parameter picks one
    description: str = ""
    epochs: int = 15  # the budget: every unpruned trial trains this many epochs
    subset: int = 0  # training images per trial; 0 = all 54k outside the validation split
    val_size: int = 6000
    split_seed: int = 0
    n_trials: int = 50
    timeout: float = 0.0  # seconds; 0 = no limit
    budget: str = ""  # `auto`'s whole wall time when no --budget is given: "15m", "1h"
    storage: str = ""  # SQLAlchemy URL; "" = the default SQLite file
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    ranges: dict[str, Any] = field(default_factory=dict)  # narrower ranges per parameter
    fixed: dict[str, Any] = field(default_factory=dict)  # parameters held at one value
    base: dict[str, Any] = field(default_factory=dict)  # run-config changes for every trial
    baseline: list[dict[str, Any]] = field(default_factory=list)  # enqueued first
    objectives: list[str] = field(default_factory=lambda: [ACCURACY])  # 2+: Pareto
    constraints: Constraints = field(default_factory=Constraints)  # budgets, before training
    name: str = ""  # the file's stem; not written in the file


def names() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.toml"))


def preset_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if path.is_dir():
            raise SearchError(f"study preset {path} is a folder; give a preset .toml file")
        if not path.is_file():
            raise SearchError(f"study preset file {path} does not exist")
        return path
    if (STUDIES_DIR / f"{name_or_path}.toml").is_file():
        return STUDIES_DIR / f"{name_or_path}.toml"
    raise SearchError(
        f"unknown study {name_or_path!r}; presets: {', '.join(names())} "
        "(or pass a path to your own .toml)"
    )


def read(path: Path) -> StudyPreset:
    """The preset in ``path``, its keys and types checked; raises ``tomllib.TOMLDecodeError``,
    ``ConfigError`` or ``ValueError``."""
    return parse(text_of(path), path.stem)


def text_of(path: Path) -> str:
    """A preset file's text: what a run stores on its study, so no worker reads the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text; a preset is a TOML file") from None


def parse(text: str, name: str) -> StudyPreset:
    """The preset ``name`` whose TOML is ``text``; raises as ``read`` does."""
    data = tomllib.loads(text)
    if "name" in data:
        raise ConfigError("unknown key 'name'; a preset is named by its file")
    preset = dataclasses.replace(from_dict(StudyPreset, data), name=name)
    if bool(preset.space) == bool(preset.spaces):
        raise ConfigError("give either space = NAME or spaces = [NAME, NAME, ...]")
    if preset.spaces:
        preset = dataclasses.replace(preset, space="+".join(preset.spaces))
    return preset
