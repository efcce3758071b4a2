"""Part e's code on the CPU: the fast path's figures and packed trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmnist.config import RunConfig
from fmnist_bench.parts import gpu


@pytest.mark.slow  # bf16 on a CPU: minutes on a loaded 2-core machine
def test_gpu_fast_path_code_runs_on_cpu(tiny_config: RunConfig, data_dir: Path) -> None:
    row = gpu.fast_pace(
        tiny_config, compile=False, images=512, epochs=2, device="cpu", data_dir=data_dir, peak=1e12
    )
    assert row["precision"] == "bf16-mixed" and row["channels_last"]
    assert row["seconds_per_60k"] == pytest.approx(60_000 / row["images_per_s"])
    assert 0 < row["of_peak"] < 1


@pytest.mark.slow
def test_packed_trials_code_runs_on_cpu(tiny_study: Path, data_dir: Path, tmp_path: Path) -> None:
    one = gpu.packed(
        str(tiny_study),
        1,
        seconds=0.1,
        device="cpu",
        data_dir=str(data_dir),
        work=tmp_path,
        target_acc=0.0,  # any epoch reaches it: the time to the first validated epoch
    )
    assert one["workers"] == 1 and one["trials"] >= 1 and one["trials_per_hour"] > 0
    assert one["epochs"] >= 1 and one["images_per_s"] > 0
    assert one["epochs_per_s"] == pytest.approx(one["epochs"] / one["wall_seconds"])
    assert 0 < one["seconds_to_target"] <= one["wall_seconds"]
