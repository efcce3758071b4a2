"""Augmentation and optimisation dimensions shared by every model family's space.

Their ranges are the same in every family, so a study over several families keeps one
history per parameter; their defaults are each family's report recipe (``dims``)."""

from __future__ import annotations

from fmnist.config import RunConfig, replace
from spaces._registry import Sample
from spaces.dims import Categorical, Dim, Float, Int

# A value and the switch that makes it count: a baseline that gives the value turns its switch
# on, rather than keep the default switch, which may leave the value unused.
GATES = {"optim.weight_decay": "optim.weight_decay_on"}


def dims(
    *, optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 128
) -> dict[str, Dim]:
    """The shared dimensions with a family's report values as defaults. Weight decay is an
    on/off switch and a log-scaled strength: a log range cannot hold the report's 0."""
    return {
        "aug.translate_px": Int(0, 4, default=3),
        "aug.rotate_deg": Float(0.0, 15.0, default=7.0),
        "aug.flip_p": Categorical((0.0, 0.5), default=0.0),
        "aug.erase_p": Float(0.0, 0.5, default=0.0),
        "optim.optimizer": Categorical(("adam", "adamw", "sgd"), default=optimizer),
        "optim.lr": Float(1e-4, 3e-1, default=lr, log=True),
        "optim.weight_decay_on": Categorical((False, True), default=weight_decay > 0),
        "optim.weight_decay": Float(1e-6, 1e-2, default=weight_decay or 1e-5, log=True),
        "optim.schedule": Categorical(
            ("onecycle", "cosine", "step", "constant"), default="onecycle"
        ),
        "optim.warmup_epochs": Float(0.0, 3.0, default=0.0),
        "optim.label_smoothing": Float(0.0, 0.2, default=0.0),
        "optim.batch_size": Categorical((64, 128, 256), default=batch_size),
    }


def apply(sample: Sample, config: RunConfig) -> RunConfig:
    """The trial's augmentation and optimisation on top of ``config``."""
    # The strength is asked for only when decay is on: a trial without decay stores no value.
    decay = sample("optim.weight_decay") if sample("optim.weight_decay_on") else 0.0
    return replace(
        config,
        **{
            "augment.translate_px": sample("aug.translate_px"),
            "augment.rotate_deg": sample("aug.rotate_deg"),
            "augment.flip_p": sample("aug.flip_p"),
            "augment.erase_p": sample("aug.erase_p"),
            "optim.optimizer": sample("optim.optimizer"),
            "optim.lr": sample("optim.lr"),
            "optim.weight_decay": decay,
            "optim.schedule": sample("optim.schedule"),
            # A short study cannot warm up for longer than it trains.
            "optim.warmup_epochs": min(sample("optim.warmup_epochs"), float(config.epochs)),
            "optim.label_smoothing": sample("optim.label_smoothing"),
            "optim.batch_size": sample("optim.batch_size"),
        },
    )
