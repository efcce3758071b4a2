"""Size and cost of a network, computed from the model alone (no training)."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates for one 1x28x28 image (convolutions and linear layers). Counted
    eagerly even on a compiled model: compiling here would cost a compile for a batch of one,
    and a compiled graph's count can differ from the network's."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.compiler.set_stance("force_eager"):
        model(torch.zeros(1, 1, 28, 28, device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2


@torch.no_grad()
def cpu_latency_ms(model: nn.Module, *, seconds: float = 0.25, threads: int = 1) -> float:
    """Median milliseconds of one fp32 forward pass of one image on the CPU, on ``threads``
    threads. One thread by default: a batch-1 figure that other processes on the machine
    (parallel workers, say) disturb least; the median shrugs off their occasional stalls."""
    was_training, was_threads = model.training, torch.get_num_threads()
    device = next(model.parameters()).device
    model.cpu().eval()
    torch.set_num_threads(threads)
    try:
        x = torch.zeros(1, 1, 28, 28)
        for _ in range(3):  # allocator and oneDNN primitive caches
            model(x)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < 5 or (time.perf_counter() - start < seconds and len(times) < 1000):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(was_threads)
        model.to(device).train(was_training)
    return 1000 * statistics.median(times)
