"""One training run, top to bottom: data on the device, split, Lightning fit, evaluation.

``fit`` is what ``fmnist-search train``, every search trial and every retrain call; callers
add behaviour through Lightning callbacks, never by copying this file.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from fmnist.augment import to_input
from fmnist.classifier import Classifier, predict_logits
from fmnist.config import ConfigError, RunConfig, full_train_config
from fmnist.data import load_train
from fmnist.models import count_macs, count_params
from fmnist.split import NUM_CLASSES, Split, make_split


def quiet_lightning() -> None:
    """Keep a search's console to our own lines: Lightning's per-Trainer banners and tips
    ("GPU available", "LOCAL_RANK", litlogger hints) say the same thing every trial."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*predict_dataloader.*")
    warnings.filterwarnings("ignore", message=".*Trying to infer the `batch_size`.*")
    warnings.filterwarnings("ignore", message=".*tensorboardX.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # Retraining on all 60k has, by design, no validation split to loop over.
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")


def resolve_device(device: str = "auto") -> str:
    """ "auto", "cpu", "cuda" or "cuda:N" checked against the CUDA devices torch sees."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (kind == "cpu" and index) or (index and not index.isdigit()):
        raise ConfigError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N; use one")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} asked for, but torch sees no CUDA device; use --device cpu"
        )
    if index and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(
            f"device {device!r} asked for, but torch sees {count} CUDA device(s), "
            f"cuda:0 to cuda:{count - 1}; use one of those"
        )
    return device


def trainer_device(device: str) -> dict[str, Any]:
    """``pl.Trainer`` arguments that put it on ``device`` ("cpu", "cuda" or "cuda:N")."""
    if device == "cpu":
        return {"accelerator": "cpu", "devices": 1}
    return {"accelerator": "gpu", "devices": [torch.device(device).index or 0]}


# The instructions a CPU's training speed turns on. Two machines both named "Intel(R) Xeon(R)
# Processor" trained one net at 20 and 66 s an epoch (docs/RESULTS.md, "The same hour"): the
# name does not tell them apart, so a bench's figures keep these too.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """Which of ``SPEED_FLAGS`` the CPU lists (Linux's cpuinfo; none found elsewhere)."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return []
    return [f for f in SPEED_FLAGS if f in flags]


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether the CPU has bf16 instructions (AVX512-BF16 or AMX); elsewhere oneDNN
    emulates bf16 and autocast is slower than fp32."""
    bf16 = {"avx512_bf16", "amx_bf16"} & set(cpu_flags())
    return torch.backends.mkldnn.is_available() and bool(bf16)


def resolve_precision(config: RunConfig, device: str) -> str:
    """Lightning precision string; 'auto' is bf16 on CUDA and on CPUs with bf16 instructions
    (1.4-1.7x the images/s of fp32 there, same accuracy: docs/BENCHMARKS.md), else fp32."""
    if config.precision == "bf16":
        return "bf16-mixed"
    if config.precision == "auto" and (device.startswith("cuda") or cpu_has_bf16()):
        return "bf16-mixed"
    return "32-true"


class DeviceBatches:
    """Batches sliced from tensors that already live on the training device: no workers, no
    per-sample Python. Shuffled per epoch from torch's (seeded) generator."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, shuffle: bool
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        # Dropping a ragged last batch keeps BatchNorm away from a batch of one.
        self.drop_last = shuffle and images.shape[0] > batch_size

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.images.shape[0]
        order = (
            torch.randperm(n, device=self.images.device)
            if self.shuffle
            else torch.arange(n, device=self.images.device)
        )
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.images[idx], self.labels[idx]


_ON_DEVICE: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def train_set_on(device: str, data_dir: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The 60k training images as uint8 on ``device``, moved there once per process."""
    key = (device, str(data_dir))
    if key not in _ON_DEVICE:
        images, labels = load_train(data_dir)
        _ON_DEVICE[key] = (images.to(device), labels.to(device))
    return _ON_DEVICE[key]


@dataclass
class FitResult:
    config: RunConfig
    module: Classifier
    split: Split
    device: str
    precision: str
    params: int
    macs: int
    train_images: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    # Counted on the device by the last validation pass and by the ``test`` pass; None when
    # that pass did not run in this fit (a resume of a finished run, no ``test`` given).
    val_confusion: torch.Tensor | None = None
    test_confusion: torch.Tensor | None = None

    @property
    def test_acc(self) -> float | None:
        c = self.test_confusion
        return None if c is None else c.diag().sum().item() / max(1, int(c.sum()))

    @property
    def val_acc(self) -> float | None:
        return self.history[-1].get("val_acc") if self.history else None

    @property
    def best_epoch(self) -> dict[str, float] | None:
        scored = [h for h in self.history if "val_acc" in h]
        return max(scored, key=lambda h: h["val_acc"]) if scored else None


def fit(
    config: RunConfig,
    *,
    data_dir: str | Path | None = None,
    device: str = "auto",
    full_train: bool = False,
    callbacks: Sequence[pl.Callback] = (),
    log_dir: str | Path | None = None,
    log_name: str = "lightning_logs",
    log_version: str | int | None = None,
    progress: bool = False,
    ckpt_path: str | Path | None = None,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> FitResult:
    """Train ``config`` and validate on its split each epoch. ``full_train`` trains on
    every training image instead (``full_train_config``); so does a config whose
    ``data.val_size`` is 0, without validation. ``test`` (images, labels) is scored once
    after training, on the training device (``FitResult.test_confusion``)."""
    quiet_lightning()
    device = resolve_device(device)
    if full_train:
        config = full_train_config(config)
    if config.compile:
        # A long-lived worker compiles a new model every trial: without a reset Dynamo's
        # cache fills up to its recompile limit and later trials silently run eager.
        torch._dynamo.reset()
    pl.seed_everything(config.seed, workers=False, verbose=False)
    images, labels = train_set_on(device, data_dir)
    split = make_split(labels, config.data.val_size, config.data.split_seed, config.data.subset)
    train = DeviceBatches(
        images[split.train_idx.to(device)],
        labels[split.train_idx.to(device)],
        config.optim.batch_size,
        shuffle=True,
    )
    val = None
    if config.data.val_size:
        vi = split.val_idx.to(device)
        val = DeviceBatches(images[vi], labels[vi], 1000, shuffle=False)
    module = Classifier(config, steps_per_epoch=len(train))
    params, macs = count_params(module.model), count_macs(module.model)
    precision = resolve_precision(config, device)
    logger = (
        TensorBoardLogger(
            save_dir=str(log_dir), name=log_name, version=log_version, default_hp_metric=False
        )
        if log_dir is not None
        else False
    )
    cpu = device == "cpu"
    trainer = pl.Trainer(
        **trainer_device(device),
        max_epochs=config.epochs,
        precision=precision,
        deterministic=cpu,  # exact repeats on CPU; cuDNN autotuning on GPU instead
        benchmark=not cpu,
        logger=logger,
        callbacks=list(callbacks),
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=None if val is not None else 0,
        log_every_n_steps=max(1, len(train)),
        default_root_dir=str(log_dir) if log_dir is not None else None,
    )
    start = time.perf_counter()
    trainer.fit(
        module,
        train_dataloaders=train,
        val_dataloaders=val,
        ckpt_path=str(ckpt_path) if ckpt_path else None,
    )
    seconds = time.perf_counter() - start
    if test is not None:
        batches = DeviceBatches(test[0].to(device), test[1].to(device), 1000, shuffle=False)
        trainer.test(module, dataloaders=batches, verbose=False)
    return FitResult(
        config=module.config,  # as trained: a ``Deadline`` re-plans its epochs
        module=module,
        split=split,
        device=device,
        precision=precision,
        params=params,
        macs=macs,
        train_images=int(split.train_idx.numel()),
        history=list(module.history),
        seconds=seconds,
        val_confusion=module.val_confusion,
        test_confusion=module.test_confusion,
    )


@torch.no_grad()
def confusion_matrix(
    module: Classifier, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000
) -> torch.Tensor:
    """A 10x10 count matrix on the CPU, row = true class, column = predicted class, of
    ``module`` in eval mode with the config's test-time augmentation. A separate pass over
    ``images``: ``fit`` counts its validation and test sets during training already."""
    module.eval()
    device = next(module.parameters()).device
    counts = torch.zeros(NUM_CLASSES**2, dtype=torch.long, device=device)
    for i in range(0, images.shape[0], batch_size):
        x = to_input(images[i : i + batch_size].to(device), module.config.data)
        y = labels[i : i + batch_size].to(device)
        predicted = predict_logits(module, x, module.config.augment.tta_flip).argmax(-1)
        counts += torch.bincount(y * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2)
    return counts.view(NUM_CLASSES, NUM_CLASSES).cpu()


def evaluate(
    module: Classifier, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000
) -> float:
    """Accuracy of ``module`` (in eval mode, with the config's test-time augmentation)."""
    counts = confusion_matrix(module, images, labels, batch_size=batch_size)
    return counts.diag().sum().item() / images.shape[0]


@torch.no_grad()
def throughput(
    module: Classifier, *, batch_size: int, device: str = "cpu", seconds: float = 1.0
) -> float:
    """Inference images per second at ``batch_size`` in fp32 (the report measured CPU FPS at
    batch 1 and 32). Warms up once, then times whole batches for about ``seconds``."""
    module = module.to(device).eval()
    x = torch.zeros(batch_size, 1, 28, 28, device=device)
    module(x)
    done, start = 0, time.perf_counter()
    while True:
        module(x)
        done += batch_size
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed
