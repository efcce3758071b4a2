"""Part e's code on the CPU: the fast path's figures and packed trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from fmnist.config import RunConfig
from fmnist_bench.bench import Bench
from fmnist_bench.options import BenchOptions
from fmnist_bench.parts import gpu


@pytest.mark.slow  # bf16 on a CPU: minutes on a loaded 2-core machine
def test_gpu_fast_path_code_runs_on_cpu(tiny_config: RunConfig, data_dir: Path) -> None:
    row = gpu.fast_pace(
        tiny_config, compile=False, images=512, epochs=2, device="cpu", data_dir=data_dir, peak=1e12
    )
    # The run it timed is the fast path, whatever the config asked for.
    assert row["precision"] == "bf16-mixed" and row["channels_last"] and not row["compile"]
    assert len(row["epoch_seconds"]) == 2 and row["images_per_s"] > 0
    # A tiny network on two CPU cores reaches a small fraction of 1 TFLOP/s.
    assert 0 < row["of_peak"] < 1
    # No data-sheet peak for a CPU: the fraction is left out rather than made up.
    unknown = gpu.fast_pace(
        tiny_config, compile=False, images=128, epochs=1, device="cpu", data_dir=data_dir
    )
    assert unknown["peak_flops_per_s"] is None and unknown["of_peak"] is None


@pytest.mark.slow
def test_packed_trials_run_on_a_fresh_study(tiny_study: Path, data_dir: Path, tmp_path: Path):
    b = Bench(BenchOptions(data_dir=str(data_dir)), "cpu", tmp_path)
    # target 0: any epoch reaches it, so the time to target is the first validated epoch's.
    # The timeout counts from the run's start, estimate included (the stored plan's deadline),
    # so it must leave room for a trial; the study's two trials end the run well before it.
    one = gpu.packed(b, str(tiny_study), 1, seconds=120, target_acc=0.0)
    # The figure counts the trials the study's own storage holds, in the bench's folder.
    stored = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path}/packed-1.db")
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    finished = [t for t in stored.trials if t.state in done]
    assert one["workers"] == 1 and one["trials"] == len(finished) >= 1
    assert (tmp_path / "packed-1").is_dir()
    assert one["epochs"] >= 1 and one["images_per_s"] > 0
    assert one["epochs_per_s"] == pytest.approx(one["epochs"] / one["wall_seconds"])
    assert 0 < one["seconds_to_target"] <= one["wall_seconds"]
