"""What a figure was measured on: device, CPU, cores, bf16 support, packages, commit, and how
busy the cores were with other work (a 2-core machine is easily shared)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from fmnist.provenance import device_name, git_commit, package_versions
from fmnist.train import cpu_flags, cpu_has_bf16, resolve_device

# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s); the first name that
# occurs in the device's name wins.
PEAK_BF16_FLOPS = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12))


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of all cores' time spent busy over ``seconds`` (Linux's /proc/stat).
    Unlike the load average it does not remember the last minute."""

    def sample() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def probe(device: str) -> dict[str, Any]:
    """The machine a run measures, as the JSON's ``machine``."""
    device = resolve_device(device)
    return {
        "device": device_name(device),
        "gpu": torch.cuda.get_device_name(torch.device(device)) if device != "cpu" else None,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_has_bf16(),
        "cpu_flags": cpu_flags(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu_busy": cpu_busy(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


def peak_flops(device: str) -> float | None:
    """The data-sheet bf16 peak of a known GPU, else None."""
    name = device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)
