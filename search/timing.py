"""A few timed training steps of one config on its device, and the epoch they add up to: the
one measurement of a machine's speed that a study's start estimate (``search.run.estimate``)
and ``auto``'s plan (``search.auto.probe``) both read, so the two never disagree about it.

The steps train a throwaway copy of the config on its training split (no test image, no trial
of a stored study) and stop as soon as they are timed. A GPU is synchronised at each stamp so
that a step's seconds are its kernels', not their launch.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import lightning.pytorch as pl
import torch

from fmnist.config import RunConfig
from fmnist.train import fit, resolve_device, train_set_on

WARMUP_STEPS = 1  # the first step pays for allocation and cuDNN autotuning: not timed
TIMED_STEPS = 5
TIMING_BUDGET_S = 15.0  # fewer timed steps (at least one) once the timing took this long
# Validation is a forward pass only, over the validation split at batch 1000: about a third
# of a training step's work per image.
VALIDATION_SHARE = 1 / 3


@dataclass(frozen=True)
class StepTime:
    """What the timed steps measured."""

    setup_s: float  # from the call to the first step: Trainer, split, model
    step_s: float  # the median timed step
    steps: int  # steps timed
    batches: int  # training batches of one epoch of the config
    batch_size: int
    val_images: int

    @property
    def epoch_s(self) -> float:
        """One epoch of the config: its training batches and its validation split."""
        val_s = self.val_images * self.step_s / self.batch_size * VALIDATION_SHARE
        return self.batches * self.step_s + val_s


class _Timed(Exception):
    """Raised once the steps are timed: ends the throwaway fit."""


class StepClock(pl.Callback):
    """Stamps every training step of the first epoch, then stops the fit once
    ``WARMUP_STEPS`` + ``TIMED_STEPS`` are stamped, or fewer past ``TIMING_BUDGET_S`` (a large
    net on a slow CPU)."""

    def __init__(self, device: str) -> None:
        self.sync = device.startswith("cuda")
        self.stamps: list[float] = []
        self.batches = 0

    def _stamp(self) -> None:
        if self.sync:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.batches = int(trainer.num_training_batches)
        self._stamp()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._stamp()
        timed = len(self.stamps) - 1 - WARMUP_STEPS
        spent = self.stamps[-1] - self.stamps[0]
        if timed >= TIMED_STEPS or (timed >= 1 and spent >= TIMING_BUDGET_S):
            raise _Timed

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        raise _Timed  # an epoch shorter than the steps wanted: time what there was

    def steps(self) -> list[float]:
        """The timed steps' seconds (all steps, when the epoch had too few to skip any)."""
        steps = [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]
        return steps[WARMUP_STEPS:] or steps


def time_steps(config: RunConfig, *, data_dir, device: str) -> StepTime:
    """Train ``config`` for a few steps on ``device`` and say what they took. The training
    set is loaded onto the device first: its load is not the config's setup (the trials of a
    study share that copy)."""
    device = resolve_device(device)
    train_set_on(device, data_dir)
    clock = StepClock(device)
    start = time.perf_counter()
    try:
        fit(config, data_dir=data_dir, device=device, callbacks=[clock])
    except _Timed:
        pass
    steps = clock.steps()
    return StepTime(
        setup_s=clock.stamps[0] - start if clock.stamps else 0.0,
        step_s=statistics.median(steps),
        steps=len(steps),
        batches=clock.batches,
        batch_size=config.optim.batch_size,
        val_images=config.data.val_size,
    )
