"""Augmentation and optimisation dimensions shared by every model family's space."""

from __future__ import annotations

from fmnist.config import RunConfig, replace
from spaces._registry import Sample
from spaces.dims import Categorical, Float, Int

DIMS = {
    "aug.translate_px": Int(0, 4, default=3),
    "aug.rotate_deg": Float(0.0, 15.0, default=7.0),
    "aug.flip_p": Categorical((0.0, 0.5), default=0.0),
    "aug.erase_p": Float(0.0, 0.5, default=0.0),
    "optim.optimizer": Categorical(("adam", "adamw", "sgd"), default="adam"),
    "optim.lr": Float(1e-4, 3e-1, default=1e-3, log=True),
    "optim.weight_decay": Float(1e-6, 1e-2, default=1e-5, log=True),
    "optim.schedule": Categorical(("onecycle", "cosine", "step", "constant"), default="onecycle"),
    "optim.warmup_epochs": Float(0.0, 3.0, default=0.0),
    "optim.label_smoothing": Float(0.0, 0.2, default=0.0),
    "optim.batch_size": Categorical((64, 128, 256), default=128),
}


def apply(sample: Sample, config: RunConfig) -> RunConfig:
    """The trial's augmentation and optimisation on top of ``config``."""
    return replace(
        config,
        **{
            "augment.translate_px": sample("aug.translate_px"),
            "augment.rotate_deg": sample("aug.rotate_deg"),
            "augment.flip_p": sample("aug.flip_p"),
            "augment.erase_p": sample("aug.erase_p"),
            "optim.optimizer": sample("optim.optimizer"),
            "optim.lr": sample("optim.lr"),
            "optim.weight_decay": sample("optim.weight_decay"),
            "optim.schedule": sample("optim.schedule"),
            # A short study cannot warm up for longer than it trains.
            "optim.warmup_epochs": min(sample("optim.warmup_epochs"), float(config.epochs)),
            "optim.label_smoothing": sample("optim.label_smoothing"),
            "optim.batch_size": sample("optim.batch_size"),
        },
    )
