"""The honest start: before the first trial, time a few training steps of the study's first
config on the chosen device and say what one trial and the whole study will take.

The steps (``search.timing``, which ``auto``'s plan reads too) train a throwaway copy of the
first config (the first baseline, else the first config the sampler would draw, drawn in a
study of its own) on the training split only: no test image, no trial of the stored study.
They are part of the run's wall, not hidden from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from fmnist.config import RunConfig
from search.pruners import Saving, saving
from search.study import ResolvedStudy, objectives
from search.text import duration
from search.timing import time_steps
from search.trials import trial_sample

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


def measure(
    study: ResolvedStudy, *, device: str, data_dir, trials: int, seed: int, timeout=None
) -> Estimate:
    """Time a few training steps of the study's first config (``search.timing``)."""
    config, what = first_config(study, seed)
    timed = time_steps(config, data_dir=data_dir, device=device)
    return Estimate(
        what=what,
        steps=timed.steps,
        device=device,
        setup_s=timed.setup_s,
        epoch_s=timed.epoch_s,
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
