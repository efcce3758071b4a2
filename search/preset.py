"""Study presets: strict TOML data in ``studies/`` (or a user's file) that states what differs
from the defaults. Everything is checked at load time, before any storage or training."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

import spaces
import studies
from fmnist.config import ConfigError, RunConfig, from_dict, merge, replace, to_dict
from fmnist.config import load_toml as load_run_config
from fmnist.configs import resolve as shipped_config
from fmnist.models import build_model
from search import pareto
from search.constraints import Constraints, measure
from search.errors import SearchError
from search.pareto_pruning import EqualEpochHalving, make_halving
from search.pruners import make_pruner
from search.samplers import make_sampler
from spaces.dims import from_override

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
    storage: str = ""  # SQLAlchemy URL; "" = the default SQLite file
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    ranges: dict[str, Any] = field(default_factory=dict)  # narrower ranges per parameter
    fixed: dict[str, Any] = field(default_factory=dict)  # parameters held at one value
    base: dict[str, Any] = field(default_factory=dict)  # run-config changes for every trial
    baseline: list[dict[str, Any]] = field(default_factory=list)  # enqueued first
    objectives: list[str] = field(default_factory=lambda: [pareto.ACCURACY])  # 2+: Pareto
    constraints: Constraints = field(default_factory=Constraints)  # budgets, before training
    name: str = ""  # the file's stem; not written in the file


def names() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.toml"))


def preset_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise SearchError(f"study preset file {path} does not exist")
        return path
    if (STUDIES_DIR / f"{name_or_path}.toml").is_file():
        return STUDIES_DIR / f"{name_or_path}.toml"
    raise SearchError(
        f"unknown study {name_or_path!r}; presets: {', '.join(names())} "
        "(or pass a path to your own .toml)"
    )


def load(name_or_path: str) -> StudyPreset:
    """Read and fully validate a preset; every error names the file and the key."""
    path = preset_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
        if "name" in data:
            raise ConfigError("unknown key 'name'; a preset is named by its file")
        preset = dataclasses.replace(from_dict(StudyPreset, data), name=path.stem)
        if bool(preset.space) == bool(preset.spaces):
            raise ConfigError("give either space = NAME or spaces = [NAME, NAME, ...]")
        if preset.spaces:
            preset = dataclasses.replace(preset, space="+".join(preset.spaces))
        validate(preset)
    except tomllib.TOMLDecodeError as e:
        raise SearchError(f"{path} is not valid TOML: {e}") from None
    except (ConfigError, ValueError, KeyError) as e:
        msg = e.args[0] if e.args else str(e)
        raise SearchError(f"{path}: {msg}") from None
    return preset


def space_of(preset: StudyPreset) -> spaces.Space:
    return spaces.combine(preset.spaces) if preset.spaces else spaces.get(preset.space)


def is_pareto(preset: StudyPreset) -> bool:
    return len(preset.objectives) > 1


def pruning(preset: StudyPreset) -> tuple[optuna.pruners.BasePruner, EqualEpochHalving | None]:
    """The study's Optuna pruner, and the rule the objective applies itself. Optuna cannot
    prune a Pareto trial, so a Pareto study gets no Optuna pruner and its ``[pruner]`` is
    search.pareto_pruning's rule; any other study, the Optuna pruner and no rule."""
    name, options = preset.pruner.name, preset.pruner.options
    if is_pareto(preset):
        return optuna.pruners.NopPruner(), make_halving(
            name, preset.epochs, preset.objectives[1:], options
        )
    return make_pruner(name, preset.epochs, options), None


def needs_latency(preset: StudyPreset) -> bool:
    """Whether trials must time the network: a latency budget or objective."""
    return "latency_ms" in preset.constraints.limits() or "latency_ms" in preset.objectives


def dims(preset: StudyPreset) -> dict[str, Any]:
    """The space's dimensions with the preset's ranges applied."""
    space = space_of(preset)
    out = dict(space.dims)
    for name, value in preset.ranges.items():
        if name not in space.dims:
            raise ValueError(
                f"ranges: {name!r} is not a parameter of the {space.name} space; "
                f"see `fmnist-search spaces`"
            )
        out[name] = from_override(name, space.dims[name], value)
    return out


def base_config(preset: StudyPreset) -> RunConfig:
    """What every trial starts from: the family's shipped report config, the preset's
    ``base`` changes, then the study's budget and split."""
    space = space_of(preset)
    default, _ = load_run_config(shipped_config(space.family))
    try:
        config = from_dict(RunConfig, merge(to_dict(default), preset.base), "base")
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return replace(
        config,
        **{
            "epochs": preset.epochs,
            "data.subset": preset.subset,
            "data.val_size": preset.val_size,
            "data.split_seed": preset.split_seed,
        },
    )


def validate(preset: StudyPreset) -> None:
    space = space_of(preset)
    ranged = dims(preset)
    for name in preset.fixed:  # a fixed value need not lie in the searched range
        if name not in ranged:
            raise ValueError(
                f"fixed: {name!r} is not a parameter of the {space.name} space; "
                "see `fmnist-search spaces`"
            )
    for table, values in [(f"baseline[{i}]", b) for i, b in enumerate(preset.baseline)]:
        for name, value in values.items():
            if name not in ranged:
                raise ValueError(
                    f"{table}: {name!r} is not a parameter of the {space.name} "
                    "space; see `fmnist-search spaces`"
                )
            if not ranged[name].contains(value):
                raise ValueError(f"{table}.{name}: {value!r} is outside {ranged[name].describe()}")
    if preset.epochs < 1 or preset.n_trials < 1:
        raise ValueError("epochs and n_trials must be at least 1")
    pareto.validate(preset.objectives)
    preset.constraints.validate()
    make_sampler(preset.sampler.name, preset.sampler.seed, preset.sampler.options)
    if preset.sampler.name == "cmaes" and (is_pareto(preset) or preset.constraints.limits()):
        raise ValueError(
            "sampler.name: cmaes handles neither several objectives nor constraints; "
            "use tpe, nsga2 or gp"
        )
    pruning(preset)
    config = base_config(preset)
    space.build(lambda n: preset.fixed.get(n, ranged[n].default), config)
    # Baselines within the size budgets; built only when there is one, since every command
    # and worker loads the preset. A latency budget is left to the trial's own timing.
    limits = preset.constraints.limits()
    if not limits.keys() & {"params", "macs"}:
        return
    defaults = {n: d.default for n, d in ranged.items()} | preset.fixed
    for i, values in enumerate(preset.baseline):
        model = build_model(space.build((defaults | values).__getitem__, config).model)
        sizes = measure(model, latency=False)
        for name in sizes.keys() & limits.keys():
            if sizes[name] > limits[name]:
                raise ValueError(
                    f"baseline[{i}]: {name} {sizes[name]:,} is over the budget "
                    f"{limits[name]:,} of [constraints]"
                )
