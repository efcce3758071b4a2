"""One typed config for a whole training run.

Frozen dataclasses of plain values. ``to_dict``/``from_dict`` round-trip losslessly through
TOML and JSON; ``from_dict`` rejects unknown keys and wrong types with the key's dotted name,
so a typo in a preset or an exported config fails loudly instead of training the default.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import tomli_w


class ConfigError(ValueError):
    """A config file or dict that cannot describe a run; the message names the key."""


# A rule: whether a value (each item of a tuple) is allowed, and the words that say what is.
Rule = tuple[Callable[[Any], bool], str]
POSITIVE: Rule = (lambda v: v > 0, "a number above 0")
AT_LEAST_1: Rule = (lambda v: v >= 1, "a whole number of 1 or more")
NON_NEGATIVE: Rule = (lambda v: v >= 0, "0 or more")
PROBABILITY: Rule = (lambda v: 0 <= v <= 1, "a probability in [0, 1]")
FRACTION: Rule = (lambda v: 0 <= v < 1, "a value in [0, 1)")
AREA: Rule = (lambda v: 0 < v <= 1, "a fraction of the image in (0, 1]")


def check_ranges(obj: Any, section: str, rules: dict[str, Rule]) -> None:
    """Range checks in the config itself, so a preset's ``[base]``, a config file and a CLI
    flag meet the same ones. Written as "not allowed" so that NaN fails too."""
    for key, (allowed, words) in rules.items():
        value = getattr(obj, key)
        if not all(allowed(v) for v in (value if isinstance(value, tuple) else (value,))):
            shown = list(value) if isinstance(value, tuple) else value
            name = f"{section}.{key}" if section else key
            raise ConfigError(f"{name} = {shown!r} is out of range; use {words}")


@dataclass(frozen=True)
class VGGConfig:
    """Blocks of ``convs_per_block`` conv-ReLU-BN layers; the first ``pools`` blocks end in a
    2x2 max-pool; dropout after each block; one hidden FC layer."""

    family: Literal["vgg"] = "vgg"
    widths: tuple[int, ...] = (32, 64)
    convs_per_block: int = 2
    pools: int = 1
    dropout: float = 0.25
    fc_width: int = 512
    fc_dropout: float = 0.5

    def __post_init__(self) -> None:
        check_ranges(
            self,
            "model",
            {
                "widths": AT_LEAST_1,
                "convs_per_block": AT_LEAST_1,
                "pools": NON_NEGATIVE,
                "dropout": FRACTION,
                "fc_width": AT_LEAST_1,
                "fc_dropout": FRACTION,
            },
        )
        if self.pools > len(self.widths):
            raise ConfigError("vgg: pools cannot exceed the number of blocks")


@dataclass(frozen=True)
class ResNetConfig:
    """Intro conv, then stages of torchvision-style basic blocks, global pool, FC."""

    family: Literal["resnet"] = "resnet"
    intro_kernel: int = 3
    intro_width: int = 64
    intro_pool: bool = False
    widths: tuple[int, ...] = (64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2)
    strides: tuple[int, ...] = (2, 2, 2)

    def __post_init__(self) -> None:
        check_ranges(
            self,
            "model",
            {k: AT_LEAST_1 for k in ("intro_kernel", "intro_width", "widths", "blocks", "strides")},
        )
        if not (len(self.widths) == len(self.blocks) == len(self.strides)) or not self.widths:
            raise ConfigError("resnet: widths, blocks and strides need one entry per stage")
        if self.intro_kernel % 2 == 0:
            raise ConfigError("resnet: intro_kernel must be odd")


@dataclass(frozen=True)
class MobileNetConfig:
    """torchvision's MobileNetV2 layout, one input channel, cut in depth and width."""

    family: Literal["mobilenet"] = "mobilenet"
    width_mult: float = 1.0
    intro_stride: int = 2
    expansion: int = 6
    # (channels, depth, stride) per stage; the first stage always has expansion 1.
    channels: tuple[int, ...] = (16, 24, 32, 64, 96)
    depths: tuple[int, ...] = (1, 2, 3, 4, 3)
    strides: tuple[int, ...] = (1, 2, 2, 2, 1)
    last_width: int = 1280
    dropout: float = 0.2

    def __post_init__(self) -> None:
        whole = ("intro_stride", "expansion", "channels", "depths", "strides", "last_width")
        rules = {k: AT_LEAST_1 for k in whole} | {"width_mult": POSITIVE, "dropout": FRACTION}
        check_ranges(self, "model", rules)
        if not (len(self.channels) == len(self.depths) == len(self.strides)) or not self.channels:
            raise ConfigError("mobilenet: channels, depths and strides need one entry per stage")


ModelConfig = VGGConfig | ResNetConfig | MobileNetConfig


@dataclass(frozen=True)
class DataConfig:
    """Which images train and validate. The validation split is always carved from the full
    60k training set with ``val_size``/``split_seed``, so ``subset`` never changes it."""

    val_size: int = 6000
    split_seed: int = 0
    subset: int = 0  # training images used; 0 means every non-validation image
    mean: float = 0.2860
    std: float = 0.3530

    def __post_init__(self) -> None:
        rules = {"val_size": NON_NEGATIVE, "split_seed": NON_NEGATIVE, "subset": NON_NEGATIVE}
        check_ranges(self, "data", rules | {"std": POSITIVE})


@dataclass(frozen=True)
class AugmentConfig:
    """Batch-wise augmentation; a strength of 0 or a probability of 0 disables a step."""

    translate_px: int = 0
    translate_p: float = 1.0
    rotate_deg: float = 0.0
    rotate_p: float = 1.0
    flip_p: float = 0.0
    erase_p: float = 0.0
    erase_max_area: float = 0.25
    tta_flip: bool = False

    def __post_init__(self) -> None:
        chances = ("translate_p", "rotate_p", "flip_p", "erase_p")
        rules = {k: PROBABILITY for k in chances} | {"erase_max_area": AREA}
        check_ranges(
            self, "augment", rules | {"translate_px": NON_NEGATIVE, "rotate_deg": NON_NEGATIVE}
        )


@dataclass(frozen=True)
class OptimConfig:
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    label_smoothing: float = 0.0
    batch_size: int = 128
    schedule: Literal["onecycle", "cosine", "step", "constant"] = "onecycle"
    warmup_epochs: float = 0.0
    step_epochs: int = 10
    step_gamma: float = 0.1

    def __post_init__(self) -> None:
        check_ranges(
            self,
            "optim",
            {
                "lr": POSITIVE,
                "weight_decay": NON_NEGATIVE,
                "momentum": FRACTION,
                "label_smoothing": FRACTION,
                "batch_size": AT_LEAST_1,
                "warmup_epochs": NON_NEGATIVE,
                "step_epochs": AT_LEAST_1,
                "step_gamma": POSITIVE,
            },
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a training run's result, and nothing that does not (device,
    output paths and logging live outside it)."""

    model: ModelConfig = field(default_factory=ResNetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 40
    seed: int = 0
    precision: Literal["auto", "32", "bf16"] = "auto"
    channels_last: bool = True
    # torch.compile the network. Off by default: on 2 CPU cores compiling costs about 40 s, more
    # than a quick trial; the GPU default awaits the bench's part e (docs/BENCHMARKS.md).
    compile: bool = False

    def __post_init__(self) -> None:
        check_ranges(self, "", {"epochs": AT_LEAST_1, "seed": NON_NEGATIVE})
        if self.optim.warmup_epochs > self.epochs:
            raise ConfigError(
                f"optim.warmup_epochs = {self.optim.warmup_epochs!r} is longer than "
                f"epochs = {self.epochs}; use a warm-up of at most the run's epochs"
            )


# Derived from the union, so adding a family to ``ModelConfig`` is the only step here.
MODEL_CONFIGS: dict[str, type] = {c.family: c for c in get_args(ModelConfig)}


def to_dict(obj: Any) -> dict[str, Any]:
    """A nested dict of plain values (tuples become lists) for TOML/JSON."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{key}: {value!r} is not one of {allowed}")
        return value
    if origin in (Union, types.UnionType):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}")
        family = value.get("family")
        if family not in MODEL_CONFIGS:
            raise ConfigError(
                f"{key}.family: {family!r} is not a model family; known: {', '.join(MODEL_CONFIGS)}"
            )
        return from_dict(MODEL_CONFIGS[family], value, key)
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}")
        return dict(value)
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}")
        return from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # a bug in this module


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build ``cls`` from a (partial) dict; missing keys take defaults, unknown keys fail."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else k
            raise ConfigError(f"unknown key '{where}'; expected one of: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def merge(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``diff`` over ``base``; a new model family replaces the model table whole."""
    out = dict(base)
    for k, v in diff.items():
        b = out.get(k)
        if (
            isinstance(v, dict)
            and isinstance(b, dict)
            and v.get("family", b.get("family")) == b.get("family")
        ):
            out[k] = merge(b, v)
        else:
            out[k] = v
    return out


def replace(config: RunConfig, **changes: Any) -> RunConfig:
    """``dataclasses.replace`` with dotted keys: ``replace(c, **{"optim.lr": 0.1})``."""
    data = to_dict(config)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        node[leaf] = list(value) if isinstance(value, tuple) else value
    return from_dict(RunConfig, data)


def stretch(config: RunConfig, epochs: int) -> RunConfig:
    """``config`` trained for ``epochs`` with its schedule stretched to them: one-cycle and
    cosine already span ``epochs``; a warm-up and a step length in epochs scale with it."""
    o, factor = config.optim, epochs / config.epochs
    return replace(
        config,
        epochs=epochs,
        **{
            "optim.warmup_epochs": o.warmup_epochs * factor,
            "optim.step_epochs": max(1, round(o.step_epochs * factor)),
        },
    )


def full_train_config(config: RunConfig, *, subset: int | None = None) -> RunConfig:
    """``config`` as a run on every training image: no validation split (``val_size = 0``,
    so the saved config says so) and no subset unless ``subset`` names one. A config that
    already has no validation split keeps its subset, so applying this twice changes nothing."""
    if subset is None:
        subset = config.data.subset if config.data.val_size == 0 else 0
    return replace(config, **{"data.val_size": 0, "data.subset": subset})


def load_toml(path: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """Read a run config file; returns the config and its optional ``[provenance]`` table."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path} is a folder; name a .toml file in it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; pass a TOML file") from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    provenance = data.pop("provenance", {})
    try:
        return from_dict(RunConfig, data), provenance
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dump_toml(config: RunConfig, provenance: dict[str, Any] | None = None) -> str:
    """The config (and its ``[provenance]``) as TOML, a short list on one line: a file meant
    to be read, edited and diffed (tomli-w writes every list one value per line)."""
    data = to_dict(config)
    if provenance:
        data["provenance"] = provenance
    return _SCALAR_ARRAY.sub(_one_line, tomli_w.dumps(data))


# tomli-w's multi-line array of scalars: one literal per line, each ending in a comma.
_SCALAR_ARRAY = re.compile(r"\[\n((?:[ ]+[^\[\]{}\n]+,\n)+)[ ]*\]")
ONE_LINE_ARRAY_CHARS = 88  # a longer list stays one value per line


def _one_line(match: re.Match[str]) -> str:
    items = [line.strip().removesuffix(",") for line in match.group(1).splitlines()]
    flat = "[" + ", ".join(items) + "]"
    return flat if len(flat) <= ONE_LINE_ARRAY_CHARS else match.group(0)
