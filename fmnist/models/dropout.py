"""Dropout whose CPU mask costs one random draw per eight elements.

On the CPU, torch's dropout draws one mt19937 number per element: for a 128x64x14x14 bf16
activation its forward and backward took 29 ms on two EPYC cores, more than the convolution
beside it. Here the mask's bytes come from 64-bit draws, eight bytes a draw (4.4 ms for the
same tensor), so ``p`` acts rounded to a multiple of 1/256. Elsewhere (CUDA's Philox is
already fast) and in eval mode it is torch's own dropout. Same parameters and state dict as
``nn.Dropout``.
"""

from __future__ import annotations

import torch
from torch import nn


def keep_mask(x: torch.Tensor, drop_256: int) -> torch.Tensor:
    """Bool mask with x's shape and strides, each element kept with chance 1 - drop_256/256."""
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64)
    # Bytes laid out in x's memory order (channels_last or not), then viewed in x's dim order.
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
    raw = words.view(torch.uint8)[:n].view([x.shape[d] for d in order])
    return raw.permute([order.index(d) for d in range(x.dim())]) >= drop_256


class Dropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        drop_256 = round(self.p * 256)
        if not self.training or x.device.type != "cpu" or not 0 < drop_256 < 256:
            return super().forward(x)
        scale = keep_mask(x, drop_256).to(x.dtype) * (256 / (256 - drop_256))
        return x * scale
