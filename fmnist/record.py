"""A finished run on disk: checkpoint, resolved config and ``metrics.json`` with provenance."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fmnist.config import ConfigError, RunConfig, dump_toml, full_train_config, to_dict
from fmnist.lockbox import open_test_set
from fmnist.provenance import device_name, git_commit, package_versions
from fmnist.train import FitResult, fit, resolve_device


def describe(result: FitResult) -> dict[str, Any]:
    """The fields every result carries, whoever made it (train, trial, retrain)."""
    best = result.best_epoch
    return {
        "val_acc": result.val_acc,
        "best_val_acc": best["val_acc"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "params": result.params,
        "macs": result.macs,
        "epochs": len(result.history),
        "epoch_seconds": [h["seconds"] for h in result.history],
        "history": result.history,
        "train_images": result.train_images,
        "split_fingerprint": result.split.fingerprint,
        "seed": result.config.seed,
        "device": device_name(result.device),
        "precision": result.precision,
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


def train_run(
    config: RunConfig,
    out_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: str = "auto",
    full_train: bool = False,
    evaluate_test: bool = False,
    progress: bool = False,
    provenance: dict[str, Any] | None = None,
    callbacks=(),
    before_test: Callable[[RunConfig], object] | None = None,
) -> tuple[dict[str, Any], FitResult]:
    """Train, optionally open the test lockbox once, and write the run's files to ``out_dir``.

    ``full_train`` trains on every training image (``full_train_config``); the saved config
    is the one trained, so it says so (with the epochs a ``Deadline`` re-planned, if one
    did). ``before_test(config)`` is called just before the test set is opened (before
    training, which scores it on the device as it ends): a ledger records the opening there,
    before any score exists."""
    device = resolve_device(device)  # a bad device fails before anything is written
    if full_train:
        config = full_train_config(config)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"the output folder {out} is an existing file; name a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot make the output folder {out}: {e.strerror}; name a folder to write in"
        ) from None
    (out / "config.toml").write_text(dump_toml(config, provenance))
    test = None
    if evaluate_test:  # scored on the device right after training, inside ``fit``
        if before_test is not None:
            before_test(config)
        test = open_test_set(data_dir, reason=f"final evaluation of {out}")
    result = fit(
        config,
        data_dir=data_dir,
        device=device,
        log_dir=out,
        progress=progress,
        callbacks=callbacks,
        test=(test.images, test.labels) if test is not None else None,
    )
    if result.config != config:  # re-planned as it trained (``fmnist.deadline``)
        config = result.config
        (out / "config.toml").write_text(dump_toml(config, provenance))
    metrics = describe(result) | {
        "full_train": config.data.val_size == 0,
        "test_acc": None,
        "lockbox_openings": 0,
        "config": to_dict(config),
        "provenance": provenance or {},
        "checkpoint": str(out / "model.ckpt"),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if test is not None:
        metrics["test_acc"] = result.test_acc
        metrics["lockbox_openings"] = 1
    torch.save(
        {
            "state_dict": result.module.model.state_dict(),
            "config": to_dict(config),
            "metrics": {k: v for k, v in metrics.items() if k != "history"},
        },
        out / "model.ckpt",
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics, result
