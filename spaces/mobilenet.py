"""MobileNetV2-like: width multiplier, expansion, stage depths, head width."""

from __future__ import annotations

from fmnist.config import MobileNetConfig, RunConfig, replace
from spaces import training
from spaces._registry import Sample, Space, register
from spaces.dims import Categorical

BASE_DEPTHS = MobileNetConfig().depths

DIMS = {
    "mobilenet.width_mult": Categorical((0.35, 0.5, 0.75, 1.0), default=1.0),
    "mobilenet.expansion": Categorical((2, 4, 6), default=6),
    "mobilenet.depth_mult": Categorical((0.5, 0.75, 1.0), default=1.0),
    "mobilenet.last_width": Categorical((256, 640, 1280), default=1280),
} | training.dims(optimizer="sgd", lr=0.05, weight_decay=4e-5)


def build(sample: Sample, base: RunConfig) -> RunConfig:
    depth_mult = sample("mobilenet.depth_mult")
    model = MobileNetConfig(
        width_mult=sample("mobilenet.width_mult"),
        expansion=sample("mobilenet.expansion"),
        depths=tuple(max(1, round(d * depth_mult)) for d in BASE_DEPTHS),
        last_width=sample("mobilenet.last_width"),
    )
    return training.apply(sample, replace(base, model=model))


SPACE = register(Space("mobilenet", "mobilenet", version=2, dims=DIMS, build=build))
