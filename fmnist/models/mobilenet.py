from __future__ import annotations

from torch import nn
from torchvision.models import MobileNetV2
from torchvision.models._utils import _make_divisible

from fmnist.config import MobileNetConfig
from fmnist.models._registry import register


@register("mobilenet")
def build(cfg: MobileNetConfig, num_classes: int) -> nn.Module:
    """torchvision's MobileNetV2 with a one-channel intro conv and fewer, narrower stages."""
    setting = [
        [1 if i == 0 else cfg.expansion, c, n, s]
        for i, (c, n, s) in enumerate(zip(cfg.channels, cfg.depths, cfg.strides, strict=True))
    ]
    net = MobileNetV2(
        num_classes=num_classes,
        width_mult=cfg.width_mult,
        inverted_residual_setting=setting,
        dropout=cfg.dropout,
    )
    intro = net.features[0][0]
    net.features[0][0] = nn.Conv2d(
        1, intro.out_channels, 3, stride=cfg.intro_stride, padding=1, bias=False
    )
    nn.init.kaiming_normal_(net.features[0][0].weight, mode="fan_out")
    last = _make_divisible(cfg.last_width * max(1.0, cfg.width_mult), 8)
    if last != net.last_channel:  # torchvision fixes the head at 1280; ours is configurable
        head = net.features[-1][0]
        net.features[-1] = type(net.features[-1])(
            head.in_channels,
            last,
            kernel_size=1,
            norm_layer=nn.BatchNorm2d,
            activation_layer=nn.ReLU6,
        )
        net.classifier[-1] = nn.Linear(last, num_classes)
        net.last_channel = last
    return net
