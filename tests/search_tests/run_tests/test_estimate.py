"""The honest start: a few timed steps of the first config, one line with what one trial and
the study take, and a second line on a CPU when the study was sized for a GPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import fmnist.data
from search.pruners import EqualEpochHalving, saving
from search.run.estimate import CPU_PRESETS, CPU_TOO_LONG_S, Estimate, first_config, measure
from search.study import resolve
from search.study.preset import names


def test_pruner_savings_follow_their_rungs() -> None:
    assert saving("none", epochs=9, options={}).kept == 1.0
    # Optuna's halving checks after epochs 2 and 4 (steps 1 and 3): epochs 1-2 all trials,
    # 3-4 a third, 5-6 a ninth.
    sha = saving("sha", epochs=6, options={})
    assert sha.kept == pytest.approx((2 + 2 / 3 + 2 / 9) / 6)
    assert "after epochs 2, 4" in sha.assumes
    assert saving("median", epochs=4, options={"n_warmup_steps": 1}).kept == 0.75
    # Its first n_startup_trials are never stopped: 2 of 6 train whole, 4 at 75%.
    median = saving("median", epochs=4, options={"n_warmup_steps": 1, "n_startup_trials": 2},
                    trials=6)  # fmt: skip
    assert median.kept == pytest.approx((2 + 4 * 0.75) / 6)
    assert saving("median", epochs=4, options={}, trials=3).kept == 1.0  # 4 by default
    hyperband = saving("hyperband", epochs=15, options={}).kept
    assert saving("sha", epochs=15, options={}).kept < hyperband < 1  # gentler brackets too
    rule = EqualEpochHalving(epochs=9, costs=["params"])
    assert saving("equal-epoch", epochs=9, options={}, rule=rule).kept == pytest.approx(
        (1 + 2 / 3 + 6 / 9) / 9
    )


def _estimate(device: str, epoch_s: float, timeout: float | None = None) -> Estimate:
    return Estimate(
        what="the first baseline", steps=5, device=device, setup_s=1.0, epoch_s=epoch_s,
        epochs=15, trials=100, saving=saving("hyperband", epochs=15, options={}),
        timeout=timeout,
    )  # fmt: skip


def test_the_start_line_says_one_trial_and_the_study() -> None:
    found = _estimate("cuda", 10.0)
    (line,) = found.lines()
    assert found.trial_s == 151 and found.unpruned_s == 15_100
    assert "one trial about 2.5 min (15 epochs of 10.0 s" in line
    assert "100 trials about 4.2 h without pruning" in line
    assert f"about {found.saving.kept:.0%} of the epochs" in line
    assert found.pruned_s < found.unpruned_s
    capped = _estimate("cuda", 10.0, timeout=600).lines()[0]
    assert capped.endswith("the 10.0 min timeout stops it first")


def test_a_gpu_sized_study_on_a_cpu_names_the_cpu_presets() -> None:
    slow = _estimate("cpu", 600.0)
    assert slow.pruned_s > CPU_TOO_LONG_S
    advice = slow.lines()[1]
    assert all(name in advice for name in CPU_PRESETS)
    assert set(CPU_PRESETS) <= set(names())
    assert len(_estimate("cuda", 600.0).lines()) == 1  # the same study on a GPU: no advice
    assert len(_estimate("cpu", 1.0).lines()) == 1  # a CPU study on a CPU: none either
    assert len(_estimate("cpu", 600.0, timeout=600).lines()) == 1  # its timeout ends it


def test_the_first_config_is_the_first_baseline(
    tmp_path: Path, tiny_preset: Callable[..., Path]
) -> None:
    study = resolve(str(tiny_preset(tmp_path / "b.toml", baseline=[{"optim.lr": 0.05}])))
    config, what = first_config(study, seed=0)
    assert what == "the first baseline" and config.optim.lr == 0.05
    config, what = first_config(resolve(str(tiny_preset(tmp_path / "s.toml"))), seed=0)
    assert what == "the sampler's first config" and 1e-4 <= config.optim.lr <= 0.3


@pytest.mark.slow
def test_measuring_trains_a_few_steps_without_the_test_set(
    tmp_path: Path,
    tiny_preset: Callable[..., Path],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read = fmnist.data.load_part

    def train_only(part: str, *args, **kwargs):
        assert part != "test", "the estimate opened the test set"
        return read(part, *args, **kwargs)

    monkeypatch.setattr(fmnist.data, "load_part", train_only)
    study = resolve(str(tiny_preset(tmp_path / "m.toml")))
    found = measure(study, device="cpu", data_dir=data_dir, trials=4, seed=0)
    assert 1 <= found.steps <= 5  # 500 images at batch 64: 7 steps, one of them untimed
    assert found.epoch_s > 0 and found.setup_s > 0
    assert found.epochs == 2 and found.trials == 4 and found.saving.kept == 1.0
