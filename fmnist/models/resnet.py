from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock

from fmnist.config import ResNetConfig
from fmnist.models._registry import register


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or cin != cout:
        downsample = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
        )
    layers = [BasicBlock(cin, cout, stride=stride, downsample=downsample)]
    layers += [BasicBlock(cout, cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


@register("resnet")
def build(cfg: ResNetConfig, num_classes: int) -> nn.Module:
    """Intro conv (the report's 7x7 hurt on 28x28 images; 3x3 is the default), then stages of
    torchvision's BasicBlock, global average pool and one FC layer."""
    layers: list[nn.Module] = [
        nn.Conv2d(1, cfg.intro_width, cfg.intro_kernel, padding=cfg.intro_kernel // 2),
        nn.BatchNorm2d(cfg.intro_width),
        nn.ReLU(inplace=True),
    ]
    if cfg.intro_pool:
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
    cin = cfg.intro_width
    for width, blocks, stride in zip(cfg.widths, cfg.blocks, cfg.strides, strict=True):
        layers.append(_stage(cin, width, blocks, stride))
        cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)
