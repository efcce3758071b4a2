"""What a figure was measured on: the CPU's speed flags beside its name, which alone does not
tell two machines apart."""

from __future__ import annotations

from pathlib import Path

import torch

from fmnist.train import SPEED_FLAGS, cpu_flags
from fmnist_bench import machine


def test_the_cpu_flags_are_the_speed_flags_it_lists(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "model name\t: Intel(R) Xeon(R) Processor\n"
        "flags\t\t: fpu sse amx_bf16 avx2 avx512f avx512_vnni\n"
    )
    assert cpu_flags(cpuinfo) == ["avx2", "avx512f", "amx_bf16"]  # SPEED_FLAGS' order
    assert cpu_flags(tmp_path / "none") == []


def test_the_probe_names_the_flags_its_bf16_follows() -> None:
    found = machine.probe("cpu")
    assert set(found["cpu_flags"]) <= set(SPEED_FLAGS)
    if torch.backends.mkldnn.is_available():
        bf16 = {"avx512_bf16", "amx_bf16"} & set(found["cpu_flags"])
        assert found["cpu_bf16"] == bool(bf16)
