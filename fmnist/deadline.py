"""A run that ends by a deadline rather than after a fixed count of epochs: at each epoch's
end it re-plans its epochs from the seconds its recent epochs took, its schedule stretched to
the new count (``Classifier.replan``). A plan made once from one timed epoch missed an hour by
10 to 20%, both times short (docs/RESULTS.md, the recipe's hour): a machine's epochs drift."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import lightning.pytorch as pl

# Epochs whose mean time plans the rest: enough to smooth one slow epoch, few enough to follow
# a machine that speeds up or slows down over an hour.
WINDOW = 5


class Deadline(pl.Callback):
    """Re-plans the run at each epoch's end so that its last epoch ends by ``until`` (a
    ``clock()`` time): the epochs done, and as many more as fit in the time left at the
    mean of the last ``WINDOW`` epochs (each timed from one epoch's end to the next, its
    validation included). With none left to fit, the run ends with the epoch just done.
    ``plans`` keeps each change, as (epochs done, epochs in all)."""

    def __init__(self, until: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.until, self.clock = until, clock
        self.stamps: list[float] = []
        self.plans: list[tuple[int, int]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.stamps = [self.clock()]

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        now = self.clock()
        self.stamps.append(now)
        recent = self.stamps[-WINDOW - 1 :]
        epoch_s = (recent[-1] - recent[0]) / (len(recent) - 1)
        done = trainer.current_epoch + 1
        epochs = done + max(0, math.floor((self.until - now) / max(epoch_s, 1e-9)))
        if epochs == trainer.max_epochs:
            return
        config = trainer.lr_scheduler_configs[0]
        step = config.scheduler.last_epoch  # stepped once a batch: the steps taken
        config.scheduler = pl_module.replan(epochs, trainer.optimizers[0], step)
        trainer.fit_loop.max_epochs = epochs
        self.plans.append((done, epochs))
