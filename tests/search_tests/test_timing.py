"""One timing of a machine's speed, read by a study's start estimate and by ``auto``'s plan:
a few steps of a config on the search's own split, stopped as soon as they are timed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest

import search.timing as timing
from search.auto.probe import recipe_config, search_images
from search.run.estimate import measure
from search.study import resolve


class _Count(pl.Callback):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.append(batch_idx)


def test_the_plan_and_the_estimate_time_the_same_steps(
    tmp_path: Path,
    tiny_preset: Callable[..., Path],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trained: list[int] = []
    fit = timing.fit

    def counted(config, **kwargs):
        return fit(config, **kwargs | {"callbacks": [*kwargs["callbacks"], _Count(trained)]})

    monkeypatch.setattr(timing, "fit", counted)
    preset = tiny_preset(tmp_path / "t.toml", subset=1000, baseline=[{"optim.lr": 0.05}])
    study = resolve(str(preset))
    # "auto", as `auto --device` passes it by default: resolved before anything loads.
    timed = timing.time_steps(recipe_config(study), data_dir=data_dir, device="auto")
    # The search's own epoch: its 1,000 training images at batch 64 are 15 whole batches (a
    # ragged last one is dropped).
    assert timed.batches == search_images(study) // 64 == 15
    assert timed.steps == timing.TIMED_STEPS and timed.val_images == 500
    assert len(trained) < timed.batches  # stopped once timed, not trained to the epoch's end
    val_s = 500 * timed.step_s / 64 * timing.VALIDATION_SHARE
    assert timed.epoch_s == pytest.approx(15 * timed.step_s + val_s)
    assert timed.setup_s > 0
    # The start estimate of the same study times the same config (its first baseline).
    trained.clear()
    found = measure(study, device="cpu", data_dir=data_dir, trials=4, seed=0)
    assert found.what == "the first baseline" and found.steps == timing.TIMED_STEPS
    assert 0 < len(trained) < 15
