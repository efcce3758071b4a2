from __future__ import annotations

import pytest
import torch

import spaces
from fmnist.config import RunConfig, load_toml, to_dict
from fmnist.configs import resolve
from fmnist.models import build_model, count_params
from spaces.dims import Categorical, Float, Int, from_override
from tests.testing import invoke

# The report's three networks, as the shipped configs build them.
REPORT_PARAMS = {"vgg": 6_494_570, "resnet": 2_780_810, "mobilenet": 680_202}


def defaults_config(space: spaces.Space, base: RunConfig | None = None) -> RunConfig:
    return space.build(lambda name: space.dims[name].default, base or RunConfig())


@pytest.fixture(params=spaces.names())
def space(request: pytest.FixtureRequest) -> spaces.Space:
    return spaces.get(request.param)


def test_defaults_build_a_config_that_builds_a_model(space: spaces.Space) -> None:
    config = defaults_config(space)
    assert config.model.family == space.family
    model = build_model(config.model).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_every_default_lies_in_its_range(space: spaces.Space) -> None:
    for name, dim in space.dims.items():
        assert dim.contains(dim.default), name


def test_every_parameter_is_prefixed_by_its_branch(space: spaces.Space) -> None:
    branches = {name.split(".", 1)[0] for name in space.dims}
    assert branches == {space.family, "aug", "optim"}
    for name in space.dims:
        assert name.count(".") == 1 and name.split(".", 1)[1], name


def test_the_space_asks_for_every_parameter_it_declares(space: spaces.Space) -> None:
    """With every on/off switch on (a switched-off strength is not asked for)."""
    asked: list[str] = []

    def sample(name: str):
        asked.append(name)
        dim = space.dims[name]
        return True if dim == Categorical((False, True), dim.default) else dim.default

    space.build(sample, RunConfig())
    assert sorted(asked) == sorted(space.dims)


@pytest.mark.parametrize(("on", "decay"), [(False, 0.0), (True, 3e-4)])
def test_weight_decay_can_be_off(space: spaces.Space, on: bool, decay: float) -> None:
    values = {name: dim.default for name, dim in space.dims.items()}
    values |= {"optim.weight_decay_on": on, "optim.weight_decay": 3e-4}
    config = space.build(values.__getitem__, RunConfig())
    assert config.optim.weight_decay == decay


def test_defaults_rebuild_the_shipped_report_config(space: spaces.Space) -> None:
    """The space's defaults are the report's recipe: on the family's shipped config they
    rebuild it whole, every key, not just the model."""
    shipped, _ = load_toml(resolve(space.family))
    assert to_dict(defaults_config(space, shipped)) == to_dict(shipped)


def test_a_study_over_several_families_keeps_one_range_per_parameter() -> None:
    both = spaces.combine(["resnet", "mobilenet"])
    assert both.version == spaces.get("resnet").version + spaces.get("mobilenet").version
    assert both.dims["optim.optimizer"].default == "adam"  # the first family's recipe
    assert both.dims["optim.lr"] == spaces.get("resnet").dims["optim.lr"]


def test_defaults_reproduce_the_report_model(space: spaces.Space) -> None:
    shipped, _ = load_toml(resolve(space.family))
    config = defaults_config(space, shipped)
    assert config.model == shipped.model
    assert count_params(build_model(config.model)) == REPORT_PARAMS[space.name]
    # Everything outside the model and the searched training knobs is the base's.
    assert (config.data, config.epochs, config.seed) == (shipped.data, shipped.epochs, shipped.seed)


def test_a_space_builds_configs_that_round_trip(space: spaces.Space) -> None:
    from fmnist.config import from_dict

    config = defaults_config(space)
    assert from_dict(RunConfig, to_dict(config)) == config


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        spaces.register(spaces.get("resnet"))


def test_an_unknown_space_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: " + ", ".join(spaces.names())):
        spaces.get("alexnet")


@pytest.mark.parametrize(
    ("base", "override", "want"),
    [
        (Int(0, 4, default=3), [1, 2], Categorical((1, 2), default=1)),
        (Categorical((3, 5, 7), default=3), [3, 7], Categorical((3, 7), default=3)),
        (Float(1e-4, 0.3, default=1e-3, log=True), {"low": 0.01, "high": 0.1},
         Float(0.01, 0.1, default=0.01, log=True)),
        (Int(0, 4, default=3), {"low": 0, "high": 2, "log": False}, Int(0, 2, default=2)),
    ],
)  # fmt: skip
def test_a_preset_range_narrows_a_dimension(base, override, want) -> None:
    assert from_override("x.y", base, override) == want


@pytest.mark.parametrize(
    ("base", "override", "message"),
    [
        (Int(0, 4, default=3), [], "at least one choice"),
        (Int(0, 4, default=3), {"low": 3, "high": 1}, "low 3 is above high 1"),
        (Categorical((3, 5), default=3), {"low": 3, "high": 5}, "expected a list of choices$"),
        (Float(0.0, 1.0, default=0.5), {"low": 0.1}, r"or a table \{low, high\}"),
        (Float(0.0, 1.0, default=0.5), "wide", r"or a table \{low, high\}"),
    ],
)
def test_a_malformed_range_names_the_parameter(base, override, message: str) -> None:
    with pytest.raises(ValueError, match=message) as e:
        from_override("x.y", base, override)
    assert "ranges.x.y" in str(e.value)


def test_spaces_command_lists_every_parameter() -> None:
    result = invoke("spaces")
    assert result.code == 0
    lines = result.out.splitlines()
    for name in spaces.names():
        space = spaces.get(name)
        start = lines.index(f"{name} (family {space.family}, version {space.version})")
        listed = {line.split()[0] for line in lines[start + 1 : start + 1 + len(space.dims)]}
        assert listed == set(space.dims)
        for pname, dim in space.dims.items():
            line = next(line for line in lines[start + 1 :] if line.split()[0] == pname)
            assert dim.describe() in line and f"default {dim.default}" in line
    from search.study import names

    assert f"study presets: {', '.join(names())}" in result.out
