"""The honest start: before the first trial, time a few training steps of the study's first
config on the chosen device and say what one trial and the whole study will take.

The steps train a throwaway copy of the first config (the first baseline, else the first
config the sampler would draw, drawn in a study of its own) on the training split only: no
test image, no trial of the stored study. They are part of the run's wall, not hidden from
it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import lightning.pytorch as pl
import optuna
import torch

from fmnist.config import RunConfig
from fmnist.train import fit, train_set_on
from search.pruners import Saving, saving
from search.study import ResolvedStudy, objectives
from search.text import duration
from search.trials import trial_sample

WARMUP_STEPS = 1  # the first step pays for allocation and cuDNN autotuning: not timed
TIMED_STEPS = 5
TIMING_BUDGET_S = 15.0  # fewer timed steps (at least one) once the timing took this long
# Validation is a forward pass only, over the validation split at batch 1000: about a third
# of a training step's work per image.
VALIDATION_SHARE = 1 / 3
# A study that would run longer than this on a CPU was sized for a GPU: the start says so
# and names the presets sized for a CPU.
CPU_TOO_LONG_S = 2 * 3600
CPU_PRESETS = ("quick", "cpu", "tiny-cpu")


@dataclass(frozen=True)
class Estimate:
    """What a study will take, from timed steps of its first config."""

    what: str  # which config was timed
    steps: int  # how many steps were timed
    device: str
    setup_s: float  # one trial's start: Trainer, split, model
    epoch_s: float
    epochs: int
    trials: int  # trials still to run
    saving: Saving
    timeout: float | None = None

    @property
    def trial_s(self) -> float:
        return self.setup_s + self.epochs * self.epoch_s

    @property
    def unpruned_s(self) -> float:
        return self.trials * self.trial_s

    @property
    def pruned_s(self) -> float:
        return self.trials * (self.setup_s + self.saving.kept * self.epochs * self.epoch_s)

    @property
    def expected_s(self) -> float:
        """With the pruner's typical saving, and no longer than the timeout."""
        return min(self.pruned_s, self.timeout) if self.timeout is not None else self.pruned_s

    def lines(self) -> list[str]:
        """The start line, and on a CPU a second one when the study is sized for a GPU."""
        pruned = (
            f"{duration(self.pruned_s)} with its pruner ({self.saving.assumes}: about "
            f"{self.saving.kept:.0%} of the epochs)"
            if self.saving.kept < 1
            else f"nothing saved by pruning ({self.saving.assumes})"
        )
        capped = (
            f"; the {duration(self.timeout)} timeout stops it first"
            if self.expected_s < self.pruned_s
            else ""
        )
        out = [
            f"estimate: one trial about {duration(self.trial_s)} ({self.epochs} epochs of "
            f"{self.epoch_s:.1f} s, timed over {self.steps} steps of {self.what} on "
            f"{self.device}); {self.trials} trial{'s' * (self.trials != 1)} about "
            f"{duration(self.unpruned_s)} without pruning, {pruned}{capped}"
        ]
        if self.device == "cpu" and self.expected_s > CPU_TOO_LONG_S:
            out.append(
                "this study is sized for a GPU and runs on a CPU here: try one sized for a "
                f"CPU, --study {', '.join(CPU_PRESETS[:-1])} or {CPU_PRESETS[-1]} "
                "(`fmnist-search spaces` lists every preset)"
            )
        return out


def first_config(study: ResolvedStudy, seed: int) -> tuple[RunConfig, str]:
    """The config the study trains first, and how to name it: its first baseline, else the
    sampler's first draw (from a throwaway in-memory study with the same sampler and seed)."""
    if study.baselines:
        values = study.baselines[0]
        config = study.space.build((study.defaults | values).__getitem__, study.base)
        return config, "the first baseline"
    scratch = optuna.create_study(
        directions=objectives.directions(study.objectives), sampler=study.sampler(seed)
    )
    trial = scratch.ask()
    config = study.space.build(trial_sample(trial, study.dims, study.preset.fixed), study.base)
    return config, "the sampler's first config"


class _Timed(Exception):
    """Raised once the steps are timed: ends the throwaway fit."""


class _StepClock(pl.Callback):
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


def measure(
    study: ResolvedStudy, *, device: str, data_dir, trials: int, seed: int, timeout=None
) -> Estimate:
    """Time a few training steps of the study's first config: ``WARMUP_STEPS`` untimed, then
    ``TIMED_STEPS``, or fewer past ``TIMING_BUDGET_S`` (a large net on a slow CPU)."""
    config, what = first_config(study, seed)
    train_set_on(device, data_dir)  # the trials share this copy; its load is not a trial's
    clock = _StepClock(device)
    start = time.perf_counter()
    try:
        fit(config, data_dir=data_dir, device=device, callbacks=[clock])
    except _Timed:
        pass
    setup_s = clock.stamps[0] - start if clock.stamps else 0.0
    steps = clock.steps()
    step_s = statistics.median(steps)
    batch = config.optim.batch_size
    val_s = config.data.val_size * step_s / batch * VALIDATION_SHARE
    return Estimate(
        what=what,
        steps=len(steps),
        device=device,
        setup_s=setup_s,
        epoch_s=clock.batches * step_s + val_s,
        epochs=config.epochs,
        trials=trials,
        saving=saving(
            study.preset.pruner.name,
            epochs=study.preset.epochs,
            options=study.preset.pruner.options,
            rule=study.pruning.rule,
            trials=trials,
        ),
        timeout=timeout,
    )
