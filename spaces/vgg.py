"""VGG-like: blocks, convs per block, width, pooling, head width and dropout."""

from __future__ import annotations

from fmnist.config import RunConfig, VGGConfig, replace
from spaces import training
from spaces._registry import Sample, Space, register
from spaces.dims import Categorical, Float

DIMS = {
    "vgg.blocks": Categorical((1, 2, 3), default=2),
    "vgg.convs_per_block": Categorical((1, 2, 3), default=2),
    "vgg.width": Categorical((16, 24, 32, 64), default=32),
    "vgg.pools": Categorical((1, 2), default=1),
    "vgg.fc_width": Categorical((32, 48, 64, 128, 256, 512), default=512),
    "vgg.dropout": Float(0.0, 0.5, default=0.25),
    "vgg.fc_dropout": Float(0.0, 0.6, default=0.5),
} | training.dims(batch_size=64)


def build(sample: Sample, base: RunConfig) -> RunConfig:
    blocks, width = sample("vgg.blocks"), sample("vgg.width")
    model = VGGConfig(
        widths=tuple(width * 2**i for i in range(blocks)),
        convs_per_block=sample("vgg.convs_per_block"),
        pools=min(sample("vgg.pools"), blocks),  # one block cannot pool twice
        dropout=sample("vgg.dropout"),
        fc_width=sample("vgg.fc_width"),
        fc_dropout=sample("vgg.fc_dropout"),
    )
    return training.apply(sample, replace(base, model=model))


# Version 3: widths of 24 and heads of 32-64 units, for nets under 100k parameters (tiny-cpu).
SPACE = register(Space("vgg", "vgg", version=3, dims=DIMS, build=build))
