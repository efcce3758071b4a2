"""What a budget is planned from before anything is searched: the preset's known recipe (its
first baseline) as one config, and a search epoch's seconds measured with a few steps of it."""

from __future__ import annotations

import time

import lightning.pytorch as pl

from fmnist.config import RunConfig, full_train_config, stretch
from fmnist.train import fit
from search.study import ResolvedStudy

TRAIN_IMAGES = 60_000  # what a final training trains on: every training image
PROBE_STEPS = 5  # batches the probe times, after one untimed (warm-up) batch
VAL_COST = 1 / 3  # a validation image costs about a third of a training image (no backward)


class StepClock(pl.Callback):
    """Seconds per training batch, the first batch (warm-up) left out."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.steps = 0
        self.seconds = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.start is not None:
            self.steps, self.seconds = self.steps + 1, now - self.start
        else:
            self.start = now

    @property
    def per_step(self) -> float:
        return self.seconds / max(1, self.steps)


def recipe_config(study: ResolvedStudy) -> RunConfig:
    """The preset's best known recipe (its first baseline; the space's defaults without one)
    at the study's epochs, as the search trains it."""
    values = study.defaults | (study.baselines[0] if study.baselines else {})
    return study.space.build(values.__getitem__, study.base)


def search_images(study: ResolvedStudy) -> int:
    """Training images of one search trial."""
    return study.preset.subset or TRAIN_IMAGES - study.preset.val_size


def probe_epoch_seconds(
    config: RunConfig, *, images: int, val_images: int, data_dir, device: str
) -> float:
    """Seconds of an epoch of ``images`` training and ``val_images`` validation images of
    ``config``, from ``PROBE_STEPS`` timed batches."""
    batch = config.optim.batch_size
    n = (PROBE_STEPS + 1) * batch
    clock = StepClock()
    fit(full_train_config(stretch(config, 1), subset=n), data_dir=data_dir, device=device,
        callbacks=[clock])  # fmt: skip
    return clock.per_step / batch * (images + VAL_COST * val_images)


def search_epoch_seconds(study: ResolvedStudy, *, data_dir, device: str) -> float:
    """Seconds of one search epoch of the preset's recipe here: what ``auto`` plans from, and
    what the baselines bench records before each run as the machine's speed."""
    return probe_epoch_seconds(
        recipe_config(study),
        images=search_images(study),
        val_images=study.preset.val_size,
        data_dir=data_dir,
        device=device,
    )
