"""Size and cost of a network, computed from the model alone (no training)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates for one 1x28x28 image (convolutions and linear layers)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, 1, 28, 28, device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2
