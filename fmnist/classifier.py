"""The LightningModule: model, loss, optimiser and schedule for one ``RunConfig``.

Metrics accumulate on the device and are read once per epoch, so the step loop never waits
for the host. The validation and test passes also count the 10x10 confusion matrix there, so
no second pass over the images is needed after a fit (on a GPU that pass would run on the CPU,
where Lightning's teardown leaves the module).
"""

from __future__ import annotations

import math
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from fmnist.augment import augment, to_input
from fmnist.config import RunConfig, stretch, to_dict
from fmnist.models import build_model
from fmnist.split import NUM_CLASSES

NAN_CHECK_EVERY = 32  # steps between looks at the loss sum, to catch a diverging loss early


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


def predict_logits(model: nn.Module, x: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    logits = model(x)
    if tta_flip:
        logits = (logits.softmax(-1) + model(x.flip(-1)).softmax(-1)).log()
    return logits


def lr_factor(config: RunConfig, steps_per_epoch: int):
    """Per-step multiplier of the base LR for the non-one-cycle schedules."""
    o = config.optim
    total = max(1, config.epochs * steps_per_epoch)
    warmup = int(o.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if o.schedule == "cosine":
            t = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        if o.schedule == "step":
            return o.step_gamma ** (step // max(1, o.step_epochs * steps_per_epoch))
        return 1.0

    return factor


# oneDNN's channels-last backward of a 1x1 stride-2 convolution over 2 to 5 input channels
# corrupts the heap on a CPU without AVX-512 (torch 2.14.1 on an AVX2 AMD EPYC: a test ResNet
# of widths 4 and 8 aborted with "corrupted size vs. prev_size"); NCHW and wider nets train.
# Narrower than one SIMD register, channels-last has no speed to give either.
CHANNELS_LAST_MIN = 8


def channels_last_safe(model: nn.Module) -> bool:
    """Whether every convolution past the one-channel input reads at least
    ``CHANNELS_LAST_MIN`` channels, so ``model`` may train channels-last."""
    reads = [m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    return min((c for c in reads if c > 1), default=CHANNELS_LAST_MIN) >= CHANNELS_LAST_MIN


class Classifier(pl.LightningModule):
    def __init__(self, config: RunConfig, steps_per_epoch: int) -> None:
        super().__init__()
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.save_hyperparameters({"config": to_dict(config)})
        self.model = build_model(config.model)
        self.channels_last = config.channels_last and channels_last_safe(self.model)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if config.compile:
            self.model.compile()  # in place: the state dict keeps its keys
        self.register_buffer("_sums", torch.zeros(5), persistent=False)
        # _sums: train loss sum, train count, val loss sum, val correct, val count
        self.register_buffer(
            "_counts", torch.zeros(NUM_CLASSES**2, dtype=torch.long), persistent=False
        )
        # The last validation and test passes' confusion counts (CPU, row = true class).
        self.val_confusion: torch.Tensor | None = None
        self.test_confusion: torch.Tensor | None = None
        self.history: list[dict[str, float]] = []  # one record per finished epoch
        self._loss_copy: tuple[torch.Tensor, torch.cuda.Event] | None = None  # GPU NaN check
        self._epoch_start = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.config.compile and not self.training:
            # Training batches all have one size (the ragged last one is dropped); evaluation's
            # last batch is smaller, so its graph takes any batch size instead of a recompile.
            torch._dynamo.maybe_mark_dynamic(x, 0)
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        x = augment(x, self.config.augment, self.config.data)
        loss = F.cross_entropy(self(x), y, label_smoothing=self.config.optim.label_smoothing)
        self._sums[0] += loss.detach().float() * y.numel()
        self._sums[1] += y.numel()
        if (batch_idx + 1) % NAN_CHECK_EVERY == 0:
            self._check_finite(wait=False)
        return loss

    def _check_finite(self, wait: bool = True) -> None:
        """Raise DivergedError if the training loss sum is not finite. With ``wait=False`` on
        a GPU it never waits for the device: it starts a copy of the sum to the host and
        looks at the copy started at the previous call, if that copy has landed, so a
        divergence is caught NAN_CHECK_EVERY steps later than on the CPU."""
        if wait or self._sums.device.type == "cpu":
            self._raise_if_diverged(self._sums[0].item())
            return
        landed, self._loss_copy = self._loss_copy, None
        if landed is not None and landed[1].query():
            self._raise_if_diverged(landed[0].item())  # a host tensor: no sync
        copy = self._sums[0].to("cpu", non_blocking=True)  # into pinned memory, asynchronous
        done = torch.cuda.Event()
        done.record()
        self._loss_copy = (copy, done)

    def _raise_if_diverged(self, value: float) -> None:
        if not math.isfinite(value):
            raise DivergedError(
                f"training loss became {value} in epoch {self.current_epoch}; "
                "lower optim.lr or change the schedule"
            )

    def on_train_epoch_start(self) -> None:
        self._sums.zero_()
        self._loss_copy = None
        self._epoch_start = time.perf_counter()

    def _record_epoch(self) -> None:
        """Close the epoch's record. Called when validation ends (so callbacks that checkpoint
        or prune at ``on_validation_end`` see it), or at train-epoch end without validation."""
        self._check_finite()
        record = {
            "epoch": self.current_epoch,
            "train_loss": float(self._sums[0] / self._sums[1].clamp(min=1)),
        }
        if self._sums[4] > 0:
            n = self._sums[4]
            record["val_loss"] = float(self._sums[2] / n)
            record["val_acc"] = float(self._sums[3] / n)
        record["seconds"] = time.perf_counter() - self._epoch_start
        self.history.append(record)

    def on_train_epoch_end(self) -> None:
        self.log("train_loss", self._sums[0] / self._sums[1].clamp(min=1))
        if not self.history or self.history[-1]["epoch"] != self.current_epoch:
            self._record_epoch()  # trained without validation (all 60k images)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["history"] = list(self.history)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint.get("history", []))

    def on_validation_epoch_start(self) -> None:
        self._sums[2:].zero_()
        self._counts.zero_()

    def _predict_and_count(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode logits with the config's test-time augmentation, counted into
        ``_counts`` by (true, predicted) class."""
        x, y = batch
        logits = predict_logits(self, to_input(x, self.config.data), self.config.augment.tta_flip)
        self._counts += torch.bincount(
            y * NUM_CLASSES + logits.argmax(-1), minlength=NUM_CLASSES**2
        )
        return logits, y

    def _confusion(self) -> torch.Tensor:
        return self._counts.view(NUM_CLASSES, NUM_CLASSES).to("cpu", copy=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        logits, y = self._predict_and_count(batch)
        self._sums[2] += F.cross_entropy(logits.float(), y, reduction="sum")
        self._sums[3] += (logits.argmax(-1) == y).sum()
        self._sums[4] += y.numel()

    def on_validation_epoch_end(self) -> None:
        n = self._sums[4].clamp(min=1)
        self.log("val_loss", self._sums[2] / n)
        self.log("val_acc", self._sums[3] / n)
        self.val_confusion = self._confusion()
        self._record_epoch()

    def on_test_epoch_start(self) -> None:
        self._counts.zero_()

    def test_step(self, batch, batch_idx: int) -> None:
        self._predict_and_count(batch)

    def on_test_epoch_end(self) -> None:
        self.test_confusion = self._confusion()

    def configure_optimizers(self):
        o = self.config.optim
        params = list(self.parameters())
        # One fused kernel per step instead of a dozen foreach passes over all weights: VGG's
        # 6.5M-weight Adam step went from 19 to 8 ms at batch 128 on 2 CPU cores.
        fused = all(p.device.type in ("cpu", "cuda") for p in params)
        if o.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay, fused=fused)
        elif o.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay, fused=fused)
        else:
            opt = torch.optim.SGD(
                params,
                lr=o.lr,
                momentum=o.momentum,
                nesterov=o.momentum > 0,
                weight_decay=o.weight_decay,
                fused=fused,
            )
        sched = self.schedule(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def schedule(self, opt: torch.optim.Optimizer, step: int = 0):
        """The config's LR schedule over its epochs, as if already stepped ``step`` times (a
        run re-planned as it trains, ``replan``, goes on from the step it has reached)."""
        o = self.config.optim
        if o.schedule == "onecycle":
            # Stepped per batch, as one-cycle is defined; the report stepped it per epoch,
            # which leaves the LR near its floor for almost the whole run.
            # The warm-up spans at least 2 steps: OneCycleLR divides by zero when it spans one.
            # Momentum cycles between 0.85/0.95 of its peak and the peak: optim.momentum with SGD,
            # 0.95 for Adam's beta1, as OneCycleLR's defaults.
            total = max(1, self.config.epochs * self.steps_per_epoch)
            warm = o.warmup_epochs / self.config.epochs if o.warmup_epochs > 0 else 0.25
            peak = o.momentum if o.optimizer == "sgd" else 0.95
            return torch.optim.lr_scheduler.OneCycleLR(
                opt,
                max_lr=o.lr,
                total_steps=total,
                pct_start=min(max(warm, 2 / total, 0.01), 0.99),
                cycle_momentum=o.optimizer != "sgd" or o.momentum > 0,
                base_momentum=peak * 0.85 / 0.95,
                max_momentum=peak,
                last_epoch=step - 1,
            )
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lr_factor(self.config, self.steps_per_epoch), last_epoch=step - 1
        )

    def replan(self, epochs: int, opt: torch.optim.Optimizer, step: int):
        """Re-plan this run, ``step`` steps in, to ``epochs`` in all: the config stretched to
        them (``fmnist.config.stretch``) and its schedule over them, at ``step``. An epoch
        added or taken moves the run's place in its schedule no further than an epoch of
        training does, so a run re-planned an epoch at a time (``fmnist.deadline``) keeps a
        smooth LR."""
        self.config = stretch(self.config, epochs)
        return self.schedule(opt, step)
