"""ResNet-like: the report's 7x7-vs-3x3 intro kernel question, width, depth, intro pooling."""

from __future__ import annotations

from fmnist.config import ResNetConfig, RunConfig, replace
from spaces import training
from spaces._registry import Sample, Space, register
from spaces.dims import Categorical

DIMS = {
    "resnet.intro_kernel": Categorical((3, 5, 7), default=3),
    "resnet.intro_width": Categorical((16, 32, 64), default=64),
    "resnet.intro_pool": Categorical((False, True), default=False),
    "resnet.stages": Categorical((2, 3), default=3),
    "resnet.blocks": Categorical((1, 2, 3), default=2),
    "resnet.width": Categorical((16, 32, 48, 64), default=64),
} | training.dims()


def build(sample: Sample, base: RunConfig) -> RunConfig:
    stages, width = sample("resnet.stages"), sample("resnet.width")
    model = ResNetConfig(
        intro_kernel=sample("resnet.intro_kernel"),
        intro_width=sample("resnet.intro_width"),
        intro_pool=sample("resnet.intro_pool"),
        widths=tuple(width * 2**i for i in range(stages)),  # doubling per stage, as in ResNet
        blocks=(sample("resnet.blocks"),) * stages,
        strides=(2,) * stages,
    )
    return training.apply(sample, replace(base, model=model))


SPACE = register(Space("resnet", "resnet", version=2, dims=DIMS, build=build))
