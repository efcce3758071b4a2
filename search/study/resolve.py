"""A preset resolved once into the one object every room reads: the space and its ranged
dimensions, the base config, the pruning, objectives and constraints, and the attributes that
bind a stored study to them. Nothing downstream re-derives any of it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tomllib
from argparse import ArgumentTypeError
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import spaces
from fmnist.config import ConfigError, RunConfig, from_dict, merge, replace, to_dict
from fmnist.config import load_toml as load_run_config
from fmnist.configs import resolve as shipped_config
from search import pruners
from search.errors import SearchError
from search.flags import duration
from search.study import objectives
from search.study.constraints import Constraints, measure
from search.study.preset import StudyPreset, parse, preset_path, text_of
from search.study.samplers import make_sampler
from spaces.dims import Dim, from_override
from spaces.training import GATES

# [base] keys the study sets itself, with the preset field that sets them.
STUDY_SET = {
    "epochs": "epochs",
    "data.subset": "subset",
    "data.val_size": "val_size",
    "data.split_seed": "split_seed",
    "seed": "the trial number (trial N trains with seed N)",
}


@dataclass(frozen=True)
class ResolvedStudy:
    """A checked preset and everything derived from it, built by ``resolve``."""

    preset: StudyPreset
    space: spaces.Space
    dims: dict[str, Dim]  # the space's dimensions with the preset's [ranges] applied
    base: RunConfig  # what every trial starts from
    pruning: pruners.Pruning
    toml: str = ""  # the preset's text, which a run stores so that no worker reads the file

    @property
    def name(self) -> str:
        return self.preset.name

    @property
    def budget_s(self) -> float | None:
        """The wall time the preset was tuned for (``auto`` spends it unless told otherwise)."""
        return duration(self.preset.budget) if self.preset.budget else None

    @property
    def objectives(self) -> list[str]:
        return list(self.preset.objectives)

    @property
    def costs(self) -> list[str]:
        """The cost objectives after accuracy; empty in a single-objective study."""
        return self.objectives[1:]

    @property
    def constraints(self) -> Constraints:
        return self.preset.constraints

    @property
    def is_pareto(self) -> bool:
        return bool(self.costs)

    @property
    def needs_latency(self) -> bool:
        """Whether trials must time the network: a latency budget or objective."""
        return "latency_ms" in self.constraints.limits() or "latency_ms" in self.objectives

    @cached_property
    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default (the report's recipe), fixed ones at their value."""
        return {n: d.default for n, d in self.dims.items()} | self.preset.fixed

    @cached_property
    def baselines(self) -> list[dict[str, Any]]:
        """Each baseline as one definite config's parameters: what it names, a switch on
        for a gated value it gives (``spaces.training.GATES``), defaults for the rest."""
        defaults = {n: v for n, v in self.defaults.items() if n not in self.preset.fixed}
        out = []
        for values in self.preset.baseline:
            gates = {g: True for v, g in GATES.items() if v in values and g in self.dims}
            out.append(defaults | gates | values)
        return out

    def sampler(self, seed: int | None = None):
        s = self.preset.sampler
        return make_sampler(s.name, s.seed if seed is None else seed, s.options)

    def attrs(self, split_fingerprint: str) -> dict[str, Any]:
        """What a stored study is bound to: resuming with any of these changed would set
        trials side by side that were not trained alike. JSON-normal, as storages keep them."""
        p = self.preset
        return json.loads(
            json.dumps(
                {
                    "space": self.space.name,
                    "space_version": self.space.version,
                    "epochs": p.epochs,
                    "subset": p.subset,
                    "val_size": p.val_size,
                    "split_seed": p.split_seed,
                    "base": p.base,
                    "ranges": p.ranges,
                    "fixed": p.fixed,
                    "objectives": list(p.objectives),
                    "constraints": self.constraints.limits(),
                    # Last: the data-level check behind val_size and split_seed, which a
                    # mismatch names first.
                    "split_fingerprint": split_fingerprint,
                }
            )
        )


def resolve(name_or_path: str) -> ResolvedStudy:
    """Read, check and resolve a preset by name or path; every error is one ``SearchError``
    naming the file and the key."""
    path = preset_path(name_or_path)
    with _errors(path):
        return resolve_text(text_of(path), path.stem, where=str(path))


def resolve_text(text: str, name: str, *, where: str = "") -> ResolvedStudy:
    """The preset ``name`` from its TOML ``text`` (as a run stores it on its study), checked
    and resolved as ``resolve`` does; errors name ``where`` (default: the preset's name)."""
    with _errors(where or f"preset {name!r}"):
        return dataclasses.replace(_resolve(parse(text, name)), toml=text)


@contextlib.contextmanager
def _errors(where: str):
    try:
        yield
    except tomllib.TOMLDecodeError as e:
        raise SearchError(f"{where} is not valid TOML: {e}") from None
    except (ConfigError, ValueError, KeyError) as e:
        msg = e.args[0] if e.args else str(e)
        raise SearchError(f"{where}: {msg}") from None


def _resolve(preset: StudyPreset) -> ResolvedStudy:
    space = spaces.combine(preset.spaces) if preset.spaces else spaces.get(preset.space)
    if preset.epochs < 1 or preset.n_trials < 1:
        raise ValueError("epochs and n_trials must be at least 1")
    objectives.validate(preset.objectives)
    preset.constraints.validate()
    if preset.budget:
        try:
            duration(preset.budget)
        except ArgumentTypeError as e:
            raise ValueError(f"budget: {e}") from None
    dims = _ranged(space, preset)
    study = ResolvedStudy(
        preset=preset,
        space=space,
        dims=dims,
        base=_base_config(space, preset),
        pruning=pruners.make(
            preset.pruner.name,
            epochs=preset.epochs,
            costs=preset.objectives[1:],
            options=preset.pruner.options,
        ),
    )
    study.sampler()
    if preset.sampler.name == "cmaes" and (study.is_pareto or preset.constraints.limits()):
        raise ValueError(
            "sampler.name: cmaes handles neither several objectives nor constraints; "
            "use tpe, nsga2 or gp"
        )
    _check_values(study)
    return study


def _ranged(space: spaces.Space, preset: StudyPreset) -> dict[str, Dim]:
    out = dict(space.dims)
    for name, value in preset.ranges.items():
        _known(space, name, "ranges")
        out[name] = from_override(name, space.dims[name], value)
    for name in preset.fixed:  # a fixed value need not lie in the searched range
        _known(space, name, "fixed")
    return out


def _known(space: spaces.Space, name: str, table: str) -> None:
    if name not in space.dims:
        raise ValueError(
            f"{table}: {name!r} is not a parameter of the {space.name} space; "
            "see `fmnist-search spaces`"
        )


def _base_config(space: spaces.Space, preset: StudyPreset) -> RunConfig:
    """The family's shipped report config, the preset's ``[base]`` changes, then the study's
    budget and split, which ``[base]`` may not set."""
    for key, field in STUDY_SET.items():
        head, _, tail = key.partition(".")
        table = preset.base.get(head) if tail else preset.base
        if isinstance(table, dict) and (tail or head) in table:
            raise ValueError(
                f"base.{key}: set by the study itself, from {field}; remove it from [base]"
            )
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


def _check_values(study: ResolvedStudy) -> None:
    """Baselines in range; the defaults build a config; baselines within the size budgets,
    built only when there is one (a latency budget is left to the trial's own timing)."""
    preset, dims = study.preset, study.dims
    for i, values in enumerate(preset.baseline):
        for name, value in values.items():
            _known(study.space, name, f"baseline[{i}]")
            if not dims[name].contains(value):
                raise ValueError(
                    f"baseline[{i}].{name}: {value!r} is outside {dims[name].describe()}"
                )
    study.space.build(study.defaults.__getitem__, study.base)
    limits = preset.constraints.limits()
    if not limits.keys() & {"params", "macs"}:
        return
    # Deferred: torch and torchvision, loaded only for a preset with a size budget.
    from fmnist.models import build_model

    for i, values in enumerate(study.baselines):
        config = study.space.build((study.defaults | values).__getitem__, study.base)
        sizes = measure(build_model(config.model), latency=False)
        for name in sizes.keys() & limits.keys():
            if sizes[name] > limits[name]:
                raise ValueError(
                    f"baseline[{i}]: {name} {sizes[name]:,} is over the budget "
                    f"{limits[name]:,} of [constraints]"
                )
