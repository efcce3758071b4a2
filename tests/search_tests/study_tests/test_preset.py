from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import spaces
from fmnist.config import load_toml
from fmnist.configs import resolve as shipped_config
from fmnist.models import build_model, count_params
from search import pruners
from search.errors import SearchError
from search.study import ResolvedStudy, StudyPreset, names, resolve
from search.study.samplers import SAMPLERS


@pytest.fixture(params=names())
def shipped(request: pytest.FixtureRequest) -> ResolvedStudy:
    return resolve(request.param)


def test_shipped_presets_are_the_four_the_docs_name() -> None:
    assert set(names()) >= {"resnet", "vgg", "mobilenet", "quick"}


def test_shipped_preset_loads_and_validates(shipped: ResolvedStudy) -> None:
    preset = shipped.preset
    assert shipped.name in names()
    assert set(preset.spaces or [preset.space]) <= set(spaces.names())  # one space or several
    assert preset.sampler.name in SAMPLERS
    assert preset.pruner.name in pruners.names(pareto=shipped.is_pareto)
    base = shipped.base
    assert (base.epochs, base.data.subset, base.data.val_size, base.data.split_seed) == (
        preset.epochs,
        preset.subset,
        preset.val_size,
        preset.split_seed,
    )


def test_each_shipped_preset_names_the_budget_auto_spends(shipped: ResolvedStudy) -> None:
    """``auto --study NAME`` with no --budget spends the preset's; a Pareto preset has none,
    as auto refuses it (it trains one winner)."""
    if shipped.is_pareto:
        assert shipped.budget_s is None
    else:
        assert shipped.budget_s is not None and 60 <= shipped.budget_s <= 3600
    assert resolve("cpu").budget_s == 15 * 60  # the baselines bench's budget


def test_shipped_baselines_build_models(shipped: ResolvedStudy) -> None:
    """Each baseline is one definite config: what it names, the space's defaults for the rest."""
    space, dims, preset = shipped.space, shipped.dims, shipped.preset
    assert preset.baseline, "a shipped preset starts from what the report knew"
    assert len(shipped.baselines) == len(preset.baseline)
    for named, params in zip(preset.baseline, shipped.baselines, strict=True):
        assert set(params) <= set(dims) and params.items() >= named.items()
        config = space.build((params | preset.fixed).__getitem__, shipped.base)
        assert count_params(build_model(config.model)) > 0
        # A weight decay a baseline names is the one it trains with, not switched off by
        # the switch's default (the cpu presets' baselines once trained without theirs).
        if "optim.weight_decay" in named:
            assert config.optim.weight_decay == named["optim.weight_decay"]


@pytest.mark.parametrize("name", ["resnet", "vgg", "mobilenet"])
def test_full_scale_baseline_is_the_report_network(name: str) -> None:
    study = resolve(name)
    space, dims = study.space, study.dims
    values = {n: d.default for n, d in dims.items()} | study.preset.baseline[0]
    config = space.build(values.__getitem__, study.base)
    report, _ = load_toml(shipped_config(space.family))
    assert config.model == report.model
    assert (config.optim.optimizer, config.optim.lr) == (report.optim.optimizer, report.optim.lr)


def test_quick_is_cpu_sized() -> None:
    """A few minutes on 2 cores, validated on the standard split, starting from a recipe."""
    quick = resolve("quick").preset
    assert quick.val_size == 6000 and quick.epochs <= 3 and 0 < quick.timeout <= 300
    assert quick.n_trials >= 4 and quick.pruner.name != "none" and quick.baseline


@pytest.mark.parametrize("name", ["cpu", "tiny-cpu"])
def test_cpu_presets_are_timed_searches_from_known_recipes(name: str) -> None:
    preset = resolve(name).preset
    assert preset.timeout > 0 and preset.n_trials >= 100  # the clock ends them, not a count
    assert preset.pruner.name in ("hyperband", "sha") and len(preset.baseline) >= 2


def test_a_preset_states_only_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('space = "vgg"\n')
    study = resolve(str(path))
    assert study.preset == StudyPreset(space="vgg", name="mine")
    assert study.dims == spaces.get("vgg").dims


def test_ranges_narrow_the_space(tiny_preset: Callable[..., Path], tmp_path: Path) -> None:
    dims = resolve(str(tiny_preset(tmp_path / "tiny.toml"))).dims
    assert dims["resnet.width"].choices == (16,)
    assert (dims["optim.lr"].low, dims["optim.lr"].high, dims["optim.lr"].log) == (1e-4, 0.3, True)
    assert dims["resnet.intro_kernel"] == spaces.get("resnet").dims["resnet.intro_kernel"]


def test_a_fixed_value_may_lie_outside_the_searched_range(
    tiny_preset: Callable[..., Path], tmp_path: Path
) -> None:
    study = resolve(str(tiny_preset(tmp_path / "tiny.toml", fixed={"optim.lr": 1.0})))
    config = study.space.build(study.defaults.__getitem__, study.base)
    assert config.optim.lr == 1.0


def test_bad_preset_names_the_key(bad_preset: tuple[Path, str]) -> None:
    path, key = bad_preset
    with pytest.raises(SearchError) as e:
        resolve(str(path))
    message = str(e.value)
    assert key in message and str(path) in message
    assert "\n" not in message


def test_invalid_toml_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('space = "resnet"\nepochs = \n')
    with pytest.raises(SearchError, match="is not valid TOML"):
        resolve(str(path))


def test_unknown_study_lists_the_presets() -> None:
    with pytest.raises(SearchError) as e:
        resolve("resnett")
    assert "'resnett'" in str(e.value)
    assert ", ".join(names()) in str(e.value)


def test_missing_preset_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SearchError, match="missing.toml does not exist"):
        resolve(str(tmp_path / "missing.toml"))
