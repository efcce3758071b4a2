from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fmnist.config import (
    AugmentConfig,
    ConfigError,
    DataConfig,
    MobileNetConfig,
    OptimConfig,
    ResNetConfig,
    RunConfig,
    VGGConfig,
    dump_toml,
    from_dict,
    full_train_config,
    load_toml,
    merge,
    replace,
    to_dict,
)
from fmnist.configs import names, resolve

NON_DEFAULT = RunConfig(
    model=MobileNetConfig(
        width_mult=0.75, expansion=4, channels=(16, 24), depths=(1, 2), strides=(1, 2)
    ),
    data=DataConfig(val_size=5000, split_seed=3, subset=1234, mean=0.3, std=0.35),
    augment=AugmentConfig(
        translate_px=2,
        translate_p=0.5,
        rotate_deg=7.5,
        rotate_p=0.25,
        flip_p=0.5,
        erase_p=0.1,
        erase_max_area=0.2,
        tta_flip=True,
    ),
    optim=OptimConfig(
        optimizer="sgd",
        lr=0.123456789e-3,
        weight_decay=5e-4,
        momentum=0.85,
        label_smoothing=0.1,
        batch_size=256,
        schedule="cosine",
        warmup_epochs=1.5,
        step_epochs=3,
        step_gamma=0.5,
    ),
    epochs=7,
    seed=42,
    precision="bf16",
    channels_last=False,
)

CONFIGS = {
    **{name: load_toml(resolve(name))[0] for name in names()},
    "defaults": RunConfig(),
    "non-default": NON_DEFAULT,
    "vgg-deep": RunConfig(model=VGGConfig(widths=(16, 32, 64), pools=2, dropout=0.0)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_toml_round_trip(name: str, tmp_path: Path) -> None:
    config = CONFIGS[name]
    text = dump_toml(config)
    assert from_dict(RunConfig, tomllib.loads(text)) == config
    path = tmp_path / "run.toml"
    path.write_text(text)
    loaded, provenance = load_toml(path)
    assert loaded == config and provenance == {}
    assert dump_toml(loaded) == text


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_json_round_trip(name: str) -> None:
    config = CONFIGS[name]
    assert from_dict(RunConfig, json.loads(json.dumps(to_dict(config)))) == config


def test_files_are_complete() -> None:
    """Every field is written, so a saved config does not depend on later defaults."""
    written = tomllib.loads(dump_toml(RunConfig()))
    assert set(written) == set(to_dict(RunConfig()))
    assert written["model"]["family"] == "resnet"
    assert written["optim"] == to_dict(OptimConfig())


def test_empty_dict_is_the_defaults() -> None:
    assert from_dict(RunConfig, {}) == RunConfig()


def test_a_preset_states_only_differences() -> None:
    config = from_dict(RunConfig, {"optim": {"lr": 3e-3}, "model": {"family": "vgg"}})
    assert config.optim == OptimConfig(lr=3e-3)
    assert config.model == VGGConfig()
    assert config.data == DataConfig()


def test_integers_are_accepted_for_floats() -> None:
    config = from_dict(RunConfig, {"optim": {"lr": 1}})
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)


def one_line_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        from_dict(RunConfig, data)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"epoch": 3}, "'epoch'"),
        ({"optim": {"lrr": 0.1}}, "'optim.lrr'"),
        ({"model": {"family": "resnet", "widthz": [8]}}, "'model.widthz'"),
        # A key of another family is unknown to this one, not silently dropped.
        ({"model": {"family": "resnet", "fc_width": 64}}, "'model.fc_width'"),
    ],
)
def test_unknown_key_is_named(data: dict[str, Any], key: str) -> None:
    message = one_line_error(data)
    assert f"unknown key {key}" in message
    assert "expected one of" in message


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"epochs": "ten"}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"channels_last": 1}, "channels_last"),
        ({"optim": {"lr": "fast"}}, "optim.lr"),
        ({"optim": {"optimizer": "rmsprop"}}, "optim.optimizer"),
        ({"optim": 3}, "optim"),
        ({"model": {"family": "resnet", "widths": 8}}, "model.widths"),
        ({"model": {"family": "resnet", "widths": [8, "x"]}}, "model.widths[1]"),
        ({"model": {"family": "transformer"}}, "model.family"),
        ({"model": {"widths": [8]}}, "model.family"),
        ({"model": "resnet"}, "model"),
    ],
)
def test_wrong_type_is_named(data: dict[str, Any], key: str) -> None:
    assert one_line_error(data).startswith(f"{key}: ")


def test_bad_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[optim]\nlrr = 0.1\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: unknown key 'optim.lrr'")):
        load_toml(path)
    path.write_text("epochs = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_toml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "absent.toml")


def test_provenance_table_is_kept_apart(tmp_path: Path) -> None:
    provenance = {"study": "quick", "trial": 17, "split_fingerprint": "ec094d7776908aa8"}
    path = tmp_path / "best.toml"
    path.write_text(dump_toml(NON_DEFAULT, provenance))
    config, read = load_toml(path)
    assert config == NON_DEFAULT and read == provenance
    path.write_text("epochs = 3\n[provenance]\nanything = ['goes', 1]\n")
    config, read = load_toml(path)
    assert config == RunConfig(epochs=3) and read == {"anything": ["goes", 1]}


def test_replace_with_dotted_keys_checks_types() -> None:
    config = replace(RunConfig(), **{"optim.lr": 0.1, "data.subset": 3000, "epochs": 2})
    assert (config.optim.lr, config.data.subset, config.epochs) == (0.1, 3000, 2)
    two = {"model.widths": (8, 16), "model.blocks": (1, 1), "model.strides": (1, 2)}
    assert replace(RunConfig(), **two).model.widths == (8, 16)
    with pytest.raises(ConfigError, match="one entry per stage"):  # checked by the config
        replace(RunConfig(), **{"model.widths": (8, 16)})
    with pytest.raises(ConfigError, match="epochs"):
        replace(RunConfig(), epochs="2")


def test_merge_keeps_a_family_and_replaces_a_new_one() -> None:
    base = to_dict(RunConfig(model=ResNetConfig(intro_width=32)))
    same = merge(base, {"model": {"family": "resnet", "widths": [8, 16]}, "epochs": 3})
    assert same["model"]["intro_width"] == 32 and same["model"]["widths"] == [8, 16]
    assert same["epochs"] == 3 and same["optim"] == base["optim"]
    other = merge(base, {"model": {"family": "vgg", "fc_width": 64}})
    assert other["model"] == {"family": "vgg", "fc_width": 64}
    assert from_dict(RunConfig, other).model == VGGConfig(fc_width=64)


def test_full_train_config_drops_the_split_and_the_subset() -> None:
    config = RunConfig(data=DataConfig(val_size=5000, subset=2000))
    full = full_train_config(config)
    assert (full.data.val_size, full.data.subset) == (0, 0)
    assert full == replace(config, **{"data.val_size": 0, "data.subset": 0})
    chosen = full_train_config(config, subset=700)
    assert (chosen.data.val_size, chosen.data.subset) == (0, 700)
    assert full_train_config(chosen) == chosen  # an explicit subset survives a second pass


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("optim.batch_size", 0, "1 or more"),
        ("optim.batch_size", -64, "1 or more"),
        ("optim.lr", 0.0, "above 0"),
        ("optim.lr", -0.1, "above 0"),
        ("optim.lr", float("nan"), "above 0"),
        ("optim.weight_decay", -1e-5, "0 or more"),
        ("optim.momentum", 1.5, "[0, 1)"),
        ("optim.label_smoothing", 1.0, "[0, 1)"),
        ("optim.warmup_epochs", -1.0, "0 or more"),
        ("optim.step_epochs", 0, "1 or more"),
        ("epochs", 0, "1 or more"),
        ("epochs", -1, "1 or more"),
        ("seed", -1, "0 or more"),
        ("augment.flip_p", 1.5, "probability in [0, 1]"),
        ("augment.erase_p", -0.1, "probability in [0, 1]"),
        ("augment.rotate_p", 2.0, "probability in [0, 1]"),
        ("augment.translate_px", -2, "0 or more"),
        ("augment.erase_max_area", 0.0, "(0, 1]"),
        ("data.subset", -5, "0 or more"),
        ("data.val_size", -1, "0 or more"),
        ("data.std", 0.0, "above 0"),
        ("model.widths", [64, 0, 256], "1 or more"),
        ("model.blocks", [2, -1, 2], "1 or more"),
    ],
)
def test_out_of_range_values_name_key_value_and_range(key: str, value: Any, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        replace(RunConfig(), **{key: value})
    message = str(err.value)
    assert message.startswith(f"{key} = ") and repr(value) in message and words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ({"family": "vgg", "dropout": 1.0}, "model.dropout"),
        ({"family": "vgg", "fc_dropout": -0.5}, "model.fc_dropout"),
        ({"family": "mobilenet", "width_mult": 0.0}, "model.width_mult"),
        ({"family": "mobilenet", "dropout": 1.2}, "model.dropout"),
    ],
)
def test_model_ranges(model: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{key} = ")):
        from_dict(RunConfig, {"model": model})


def test_warm_up_cannot_outlast_the_run() -> None:
    with pytest.raises(ConfigError, match=r"optim.warmup_epochs = 3.0 is longer than epochs = 2"):
        replace(RunConfig(), epochs=2, **{"optim.warmup_epochs": 3.0})
    assert replace(RunConfig(), epochs=2, **{"optim.warmup_epochs": 2.0}).optim.warmup_epochs == 2


def test_a_config_file_meets_the_same_range_checks(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[optim]\nbatch_size = 0\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: optim.batch_size = 0 is out of")):
        load_toml(path)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b"epochs = 3\n# \xff\xfe caf\xe9\n"), "is not UTF-8 text"),
    ],
    ids=["folder", "not-utf8"],
)
def test_unreadable_config_file_is_one_line(tmp_path: Path, make: Any, words: str) -> None:
    path = tmp_path / "config.toml"
    make(path)
    with pytest.raises(ConfigError, match=words) as err:
        load_toml(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_short_lists_are_written_on_one_line() -> None:
    """A file meant to be read and diffed: ``widths = [16, 32, 64]``, not one value per line;
    a list too long for a line, and strings with brackets and commas, still round-trip."""
    config = CONFIGS["vgg-deep"]
    provenance = {
        "seeds": [1, 2, 3],
        "notes": ["a, b", "[c]", 'quote "d"'],
        "long": list(range(100, 140)),
        "nested": [[1, 2], [3]],
    }
    text = dump_toml(config, provenance)
    assert "widths = [16, 32, 64]\n" in text
    assert "seeds = [1, 2, 3]\n" in text
    assert "long = [\n" in text  # 40 values do not fit one line
    data = tomllib.loads(text)
    assert data.pop("provenance") == provenance
    assert from_dict(RunConfig, data) == config
