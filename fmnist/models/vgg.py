from __future__ import annotations

from torch import nn

from fmnist.config import VGGConfig
from fmnist.models._registry import register
from fmnist.models.dropout import Dropout


@register("vgg")
def build(cfg: VGGConfig, num_classes: int) -> nn.Module:
    """conv-ReLU-BN (the report's order) blocks, max-pool after the first ``pools`` blocks."""
    layers: list[nn.Module] = []
    cin, side = 1, 28
    for i, width in enumerate(cfg.widths):
        for _ in range(cfg.convs_per_block):
            layers += [
                nn.Conv2d(cin, width, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.BatchNorm2d(width),
            ]
            cin = width
        if i < cfg.pools:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        if cfg.dropout > 0:
            layers.append(Dropout(cfg.dropout))
    layers += [
        nn.Flatten(),
        nn.Linear(cin * side * side, cfg.fc_width),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(cfg.fc_width),
    ]
    if cfg.fc_dropout > 0:
        layers.append(Dropout(cfg.fc_dropout))
    layers.append(nn.Linear(cfg.fc_width, num_classes))
    return nn.Sequential(*layers)
