"""Timing whole epochs: seconds in training steps and in validation per epoch, images/s from
them, and interleaved repeats that keep the fastest run."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch


def _sync(device: torch.device | str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


class EpochClock(pl.Callback):
    """Seconds per epoch spent in training steps and in validation, read at epoch edges only
    (one host sync each), so the clock costs the step loop nothing. (The library's
    ``search.timing.StepClock`` times a few single steps instead, to plan from.)"""

    def __init__(self) -> None:
        self.train_seconds: list[float] = []
        self.val_seconds: list[float] = []
        self._start = self._val_start = 0.0
        self._open = False

    def _now(self, pl_module: pl.LightningModule) -> float:
        _sync(pl_module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._open = self._now(pl_module), True

    def on_validation_start(self, trainer, pl_module) -> None:
        now = self._now(pl_module)
        if self._open:
            self.train_seconds.append(now - self._start)
            self._open = False
        self._val_start = now

    def on_validation_end(self, trainer, pl_module) -> None:
        self.val_seconds.append(self._now(pl_module) - self._val_start)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._open:  # an epoch without validation
            self.train_seconds.append(self._now(pl_module) - self._start)
            self._open = False

    @property
    def step_seconds(self) -> float:
        return sum(self.train_seconds) + sum(self.val_seconds)


def pace(images_per_epoch: int, seconds: Sequence[float]) -> dict[str, Any]:
    """Images/s of the fastest timed epoch, and over all timed epochs. The first epoch picks
    oneDNN/cuDNN kernels, grows the allocator and compiles: it is timed only when alone.
    Other work on the machine only ever slows an epoch, so on a shared machine the fastest
    one is the closest to the machine's own speed; on a dedicated one the two agree."""
    timed = list(seconds[1:]) if len(seconds) > 1 else list(seconds)
    return {
        "images_per_epoch": images_per_epoch,
        "epoch_seconds": [round(s, 4) for s in seconds],
        "images_per_s": images_per_epoch / min(timed),
        "images_per_s_mean": images_per_epoch * len(timed) / sum(timed),
    }


def best_of(measure: dict[str, Callable[[], dict[str, Any]]], repeats: int) -> dict[str, Any]:
    """Every measurement ``repeats`` times, interleaved so that a burst of other work on the
    machine does not land on one of them only; the fastest run of each, with every run's
    rate."""
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in measure}
    for _ in range(repeats):
        for key, fn in measure.items():
            runs[key].append(fn())
    return {
        key: max(rows, key=lambda r: r["images_per_s"])
        | {"images_per_s_runs": [round(r["images_per_s"], 1) for r in rows]}
        for key, rows in runs.items()
    }
