from __future__ import annotations

import pytest
import torch

from fmnist.config import MODEL_CONFIGS, ConfigError, load_toml
from fmnist.configs import names, resolve
from fmnist.models import build_model, count_macs, count_params, families, register

# The 2020 report's networks, counted from its scripts.
PRESET_PARAMS = {"vgg": 6_494_570, "resnet": 2_780_810, "mobilenet": 680_202}


def test_every_config_family_has_a_builder() -> None:
    assert families() == sorted(MODEL_CONFIGS)


@pytest.mark.parametrize("family", families())
def test_forward_shape(family: str) -> None:
    torch.manual_seed(0)
    model = build_model(MODEL_CONFIGS[family]())
    x = torch.randn(4, 1, 28, 28)
    assert model(x).shape == (4, 10)
    model.eval()
    with torch.no_grad():
        out = model(x[:1])
    assert out.shape == (1, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("family", families())
def test_size_and_cost_are_reported(family: str) -> None:
    model = build_model(MODEL_CONFIGS[family]())
    assert count_params(model) > 0
    assert count_macs(model) > 0
    assert model.training  # counting MACs leaves the mode as it was


@pytest.mark.parametrize("family", families())
def test_macs_of_a_compiled_model_are_its_eager_count_and_compile_nothing(family: str) -> None:
    from torch._dynamo.utils import counters

    config = MODEL_CONFIGS[family]()
    eager = build_model(config)
    compiled = build_model(config)
    compiled.compile()  # in place, as a `compile = true` run does
    torch._dynamo.reset()
    counters.clear()
    assert count_macs(compiled) == count_macs(eager) > 0
    assert counters["stats"]["calls_captured"] == 0  # nothing traced, so nothing compiled


@pytest.mark.parametrize("family", families())
def test_num_classes(family: str) -> None:
    model = build_model(MODEL_CONFIGS[family](), num_classes=3)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_shipped_configs_are_the_report_presets() -> None:
    assert names() == sorted(PRESET_PARAMS)


@pytest.mark.parametrize("name", sorted(PRESET_PARAMS))
def test_preset_parameter_count(name: str) -> None:
    config, _ = load_toml(resolve(name))
    assert config.model.family == name
    assert count_params(build_model(config.model)) == PRESET_PARAMS[name]


def test_macs_count_multiply_accumulates_not_flops() -> None:
    config, _ = load_toml(resolve("vgg"))
    by_hand = (
        28 * 28 * 32 * 1 * 9
        + 28 * 28 * 32 * 32 * 9
        + 14 * 14 * 64 * 32 * 9
        + 14 * 14 * 64 * 64 * 9
        + 14 * 14 * 64 * 512
        + 512 * 10
    )
    assert count_macs(build_model(config.model)) == by_hand


def test_unknown_family_lists_the_known_ones() -> None:
    class Fake:
        family = "transformer"

    with pytest.raises(ValueError, match="known: mobilenet, resnet, vgg"):
        build_model(Fake())


def test_a_family_registers_once() -> None:
    with pytest.raises(ValueError, match="'vgg' is registered twice"):
        register("vgg")(lambda config, num_classes: torch.nn.Identity())
    assert families() == sorted(MODEL_CONFIGS)


@pytest.mark.parametrize(
    ("family", "changes", "words"),
    [
        ("resnet", {"widths": (8, 16), "blocks": (1,), "strides": (2, 2)}, "one entry per stage"),
        ("resnet", {"intro_kernel": 4}, "odd"),
        ("vgg", {"widths": (8,), "pools": 2}, "pools"),
        ("mobilenet", {"channels": (16,), "depths": (1, 2), "strides": (1,)}, "one entry"),
    ],
)
def test_inconsistent_model_configs_are_refused(family: str, changes: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        build_model(MODEL_CONFIGS[family](**changes))


@pytest.mark.gpu
@pytest.mark.parametrize("family", families())
def test_forward_on_cuda_in_bf16_channels_last(family: str) -> None:
    model = build_model(MODEL_CONFIGS[family]()).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(8, 1, 28, 28, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x)
    assert out.shape == (8, 10) and torch.isfinite(out.float()).all()
