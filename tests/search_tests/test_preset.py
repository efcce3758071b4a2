from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import spaces
from fmnist.config import load_toml
from fmnist.configs import resolve
from fmnist.models import build_model, count_params
from search import preset as presets
from search.errors import SearchError
from search.pruners import PRUNERS
from search.samplers import SAMPLERS


@pytest.fixture(params=presets.names())
def shipped(request: pytest.FixtureRequest) -> presets.StudyPreset:
    return presets.load(request.param)


def test_shipped_presets_are_the_four_the_docs_name() -> None:
    assert set(presets.names()) >= {"resnet", "vgg", "mobilenet", "quick"}


def test_shipped_preset_loads_and_validates(shipped: presets.StudyPreset) -> None:
    assert shipped.name in presets.names()
    assert set(shipped.spaces or [shipped.space]) <= set(spaces.names())  # one space or several
    assert shipped.sampler.name in SAMPLERS and shipped.pruner.name in PRUNERS
    presets.validate(shipped)
    base = presets.base_config(shipped)
    assert (base.epochs, base.data.subset, base.data.val_size, base.data.split_seed) == (
        shipped.epochs,
        shipped.subset,
        shipped.val_size,
        shipped.split_seed,
    )


def test_shipped_baselines_build_models(shipped: presets.StudyPreset) -> None:
    """Each baseline is one definite config: what it names, the space's defaults for the rest."""
    space, dims = presets.space_of(shipped), presets.dims(shipped)
    assert shipped.baseline, "a shipped preset starts from what the report knew"
    for params in shipped.baseline:
        assert set(params) <= set(dims)
        values = {n: d.default for n, d in dims.items()} | shipped.fixed | params
        config = space.build(values.__getitem__, presets.base_config(shipped))
        assert count_params(build_model(config.model)) > 0


@pytest.mark.parametrize("name", ["resnet", "vgg", "mobilenet"])
def test_full_scale_baseline_is_the_report_network(name: str) -> None:
    preset = presets.load(name)
    space, dims = presets.space_of(preset), presets.dims(preset)
    values = {n: d.default for n, d in dims.items()} | preset.baseline[0]
    config = space.build(values.__getitem__, presets.base_config(preset))
    report, _ = load_toml(resolve(space.family))
    assert config.model == report.model
    assert (config.optim.optimizer, config.optim.lr) == (report.optim.optimizer, report.optim.lr)


def test_quick_is_cpu_sized() -> None:
    quick = presets.load("quick")
    assert quick.n_trials >= 8 and quick.epochs <= 3
    assert 0 < quick.subset <= 5000 and quick.pruner.name != "none"


def test_a_preset_states_only_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('space = "vgg"\n')
    preset = presets.load(str(path))
    assert preset == presets.StudyPreset(space="vgg", name="mine")
    assert presets.dims(preset) == spaces.get("vgg").dims


def test_ranges_narrow_the_space(tiny_preset: Callable[..., Path], tmp_path: Path) -> None:
    preset = presets.load(str(tiny_preset(tmp_path / "tiny.toml")))
    dims = presets.dims(preset)
    assert dims["resnet.width"].choices == (16,)
    assert (dims["optim.lr"].low, dims["optim.lr"].high, dims["optim.lr"].log) == (1e-4, 0.3, True)
    assert dims["resnet.intro_kernel"] == spaces.get("resnet").dims["resnet.intro_kernel"]


def test_a_fixed_value_may_lie_outside_the_searched_range(
    tiny_preset: Callable[..., Path], tmp_path: Path
) -> None:
    preset = presets.load(str(tiny_preset(tmp_path / "tiny.toml", fixed={"optim.lr": 1.0})))
    dims = presets.dims(preset)
    config = presets.space_of(preset).build(
        lambda n: preset.fixed.get(n, dims[n].default), presets.base_config(preset)
    )
    assert config.optim.lr == 1.0


def test_bad_preset_names_the_key(bad_preset: tuple[Path, str]) -> None:
    path, key = bad_preset
    with pytest.raises(SearchError) as e:
        presets.load(str(path))
    message = str(e.value)
    assert key in message and str(path) in message
    assert "\n" not in message


def test_invalid_toml_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('space = "resnet"\nepochs = \n')
    with pytest.raises(SearchError, match="is not valid TOML"):
        presets.load(str(path))


def test_unknown_study_lists_the_presets() -> None:
    with pytest.raises(SearchError) as e:
        presets.load("resnett")
    assert "'resnett'" in str(e.value)
    assert ", ".join(presets.names()) in str(e.value)


def test_missing_preset_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SearchError, match="missing.toml does not exist"):
        presets.load(str(tmp_path / "missing.toml"))
