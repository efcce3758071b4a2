"""Our trainer, ``fmnist.train.fit``, timed over whole epochs on a run config."""

from __future__ import annotations

from typing import Any

from fmnist.config import RunConfig, load_toml, replace
from fmnist.configs import resolve as shipped_config
from fmnist.train import fit
from fmnist_bench.clock import EpochClock, pace

EPOCH_IMAGES = 60_000


def run_config(name: str) -> RunConfig:
    """A shipped run config (``vgg``, ``resnet``, ``mobilenet``) or a TOML file."""
    return load_toml(shipped_config(name))[0]


def throughput(
    config: RunConfig,
    *,
    images: int,
    epochs: int,
    batch_size: int | None = None,
    device: str = "auto",
    data_dir=None,
) -> dict[str, Any]:
    """Training images/s of ``fit`` on ``images`` training images (no validation), with the
    config's precision and memory format."""
    # No validation split, so that the subset survives ``fit``'s full-train config (which
    # otherwise trains every one of the 60k images).
    changes: dict[str, Any] = {"epochs": epochs, "data.val_size": 0, "data.subset": images}
    if batch_size is not None:
        changes["optim.batch_size"] = batch_size
    config = replace(config, **changes)
    clock = EpochClock()
    result = fit(config, data_dir=data_dir, device=device, full_train=True, callbacks=[clock])
    bs, trained = config.optim.batch_size, result.train_images
    per_epoch = trained // bs * bs if trained > bs else trained  # a ragged last batch is dropped
    return {
        "pipeline": "ours",
        "batch_size": bs,
        "precision": result.precision,
        "channels_last": result.module.channels_last,  # as trained: narrow nets keep NCHW
    } | pace(per_epoch, clock.train_seconds)
