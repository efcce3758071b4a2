"""Training speed and memory, measured the same way for our trainer and for the report's
pipeline: whole epochs, the same network, the same training images, the same machine.

The search-level figures (trial overhead over a study, pruned against unpruned search, trials
packed on one GPU) are in ``search/bench.py``; this package never imports optuna.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from fmnist.config import DataConfig, RunConfig, load_toml, replace
from fmnist.configs import resolve as shipped_config
from fmnist.data import load_train
from fmnist.models import build_model, count_macs
from fmnist.provenance import device_name, git_commit, package_versions
from fmnist.split import make_split
from fmnist.train import cpu_has_bf16, fit, quiet_lightning, resolve_device, trainer_device

REPORT_BATCH = 64
EPOCH_IMAGES = 60_000
# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s); the first name that
# occurs in the device's name wins.
PEAK_BF16_FLOPS = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12))


def preset(name: str) -> RunConfig:
    """A shipped run config (``vgg``, ``resnet``, ``mobilenet``) or a TOML file."""
    return load_toml(shipped_config(name))[0]


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of all cores' time spent busy over ``seconds`` (Linux's /proc/stat):
    other work on the same cores slows every figure, and a 2-core machine is easily shared.
    Unlike the load average it does not remember the last minute."""

    def sample() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def machine(device: str) -> dict[str, Any]:
    """What a figure was measured on, and how busy the machine was with other work."""
    device = resolve_device(device)
    return {
        "device": device_name(device),
        "gpu": torch.cuda.get_device_name(torch.device(device)) if device != "cpu" else None,
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_has_bf16(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu_busy": cpu_busy(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


def _sync(device: torch.device | str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


class StepClock(pl.Callback):
    """Seconds per epoch spent in training steps and in validation, read at epoch edges only
    (one host sync each), so the clock costs the step loop nothing."""

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


def _pace(images_per_epoch: int, seconds: Sequence[float]) -> dict[str, Any]:
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


def ours(
    config: RunConfig,
    *,
    images: int,
    epochs: int,
    batch_size: int | None = None,
    device: str = "auto",
    data_dir=None,
) -> dict[str, Any]:
    """Training images/s of ``fmnist.train.fit`` on ``images`` training images (no
    validation), with the config's precision and memory format."""
    changes: dict[str, Any] = {"epochs": epochs, "data.subset": images}
    if batch_size is not None:
        changes["optim.batch_size"] = batch_size
    config = replace(config, **changes)
    clock = StepClock()
    result = fit(config, data_dir=data_dir, device=device, full_train=True, callbacks=[clock])
    bs = config.optim.batch_size
    per_epoch = images // bs * bs if images > bs else images  # a ragged last batch is dropped
    return {
        "pipeline": "ours",
        "batch_size": bs,
        "precision": result.precision,
        "channels_last": config.channels_last,
    } | _pace(per_epoch, clock.train_seconds)


class PilImages(Dataset):
    """What torchvision's ``FashionMNIST`` does per item: uint8 array -> PIL image ->
    transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i].numpy())), int(self.labels[i])


def report_transform(data: DataConfig) -> transforms.Compose:
    return transforms.Compose(
        [
            transforms.RandomRotation(7),
            transforms.RandomCrop(28, padding=3),
            transforms.ToTensor(),
            transforms.Normalize((data.mean,), (data.std,)),
        ]
    )


class ReportLoop(pl.LightningModule):
    """The report's Lightning loop around the same network: fp32, Adam, cross-entropy and
    nothing else (no metrics), so the baseline carries no cost of ours."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self.model = build_model(config.model)
        self.lr = config.optim.lr

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def report(
    config: RunConfig,
    *,
    images: int,
    epochs: int,
    device: str = "auto",
    data_dir=None,
    workers: int = 0,
) -> dict[str, Any]:
    """Training images/s of the report's pipeline: per-image PIL transforms in a
    ``DataLoader`` at batch 64, fp32, on the same training images ``ours`` uses."""
    quiet_lightning()
    device = resolve_device(device)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    all_images, labels = load_train(data_dir)
    idx = make_split(labels, 0, config.data.split_seed, images).train_idx  # as fit(full_train)
    loader = DataLoader(
        PilImages(all_images[idx], labels[idx], report_transform(config.data)),
        batch_size=REPORT_BATCH,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device != "cpu",
    )
    clock = StepClock()
    trainer = pl.Trainer(
        **trainer_device(device),
        max_epochs=epochs,
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(ReportLoop(config), train_dataloaders=loader)
    return {
        "pipeline": "report",
        "batch_size": REPORT_BATCH,
        "precision": "32-true",
        "channels_last": False,
        "loader_workers": workers,
    } | _pace(images, clock.train_seconds)


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


def fast_path_grid(
    config: RunConfig,
    *,
    images: int,
    epochs: int,
    repeats: int = 1,
    device: str = "auto",
    data_dir=None,
) -> dict[str, Any]:
    """``ours`` at the preset's batch size for fp32/bf16 x NCHW/channels_last: the
    measurement behind the ``precision = "auto"`` and ``channels_last`` defaults."""
    measure = {}
    for precision in ("32", "bf16"):
        for channels_last in (False, True):
            c = replace(config, precision=precision, channels_last=channels_last)
            label = f"{precision}-{'channels_last' if channels_last else 'nchw'}"
            measure[label] = functools.partial(
                ours, c, images=images, epochs=epochs, device=device, data_dir=data_dir
            )
    return best_of(measure, repeats)


def precision_accuracy(
    config: RunConfig,
    *,
    images: int,
    epochs: int,
    seeds: Sequence[int] = (0,),
    device: str = "auto",
    data_dir=None,
) -> list[dict[str, Any]]:
    """Validation accuracy per epoch of the same runs (same seeds, split and images) in fp32
    and in bf16: the fast path must not cost accuracy."""
    rows = []
    for seed in seeds:
        for precision in ("32", "bf16"):
            c = replace(
                config, precision=precision, epochs=epochs, seed=seed, **{"data.subset": images}
            )
            start = time.perf_counter()
            result = fit(c, data_dir=data_dir, device=device)
            rows.append(
                {
                    "precision": result.precision,
                    "seed": seed,
                    "train_images": result.train_images,
                    "val_images": c.data.val_size,
                    "val_acc": [round(h["val_acc"], 4) for h in result.history],
                    "train_loss": [round(h["train_loss"], 4) for h in result.history],
                    "seconds": time.perf_counter() - start,
                }
            )
    return rows


def peak_flops(device: str) -> float | None:
    name = device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


def fast_pace(
    config: RunConfig,
    *,
    compile: bool,
    images: int = EPOCH_IMAGES,
    epochs: int = 3,
    device: str = "auto",
    data_dir=None,
    peak: float | None = None,
) -> dict[str, Any]:
    """The GPU fast path: bf16 + channels_last at the preset's batch size, optionally with
    ``torch.compile``. Images/s, seconds per 60k-image epoch, the first epoch's extra time
    (compilation, autotuning) apart, and achieved FLOP/s against ``peak`` (default: the
    data-sheet peak of a known GPU)."""
    device = resolve_device(device)
    config = replace(config, precision="bf16", channels_last=True, compile=compile)
    row = ours(config, images=images, epochs=epochs, device=device, data_dir=data_dir)
    seconds = row["epoch_seconds"]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    # 2 FLOPs per multiply-accumulate; the backward pass costs about twice the forward.
    flops = 6 * count_macs(build_model(config.model)) * row["images_per_s"]
    peak = peak if peak is not None else peak_flops(device)
    return row | {
        "compile": compile,
        "first_epoch_extra_seconds": seconds[0] - steady,
        "seconds_per_60k": EPOCH_IMAGES / row["images_per_s"],
        "flops_per_s": flops,
        "peak_flops_per_s": peak,
        "of_peak": flops / peak if peak else None,
    }


# A child forked from this process carries this process's resident pages in its ru_maxrss
# until it execs, so the measured command is started by a fresh, small interpreter instead.
_GO_BETWEEN = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def peak_rss(argv: Sequence[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``argv`` as a child process: its own peak resident memory (``ru_maxrss`` from
    ``wait4``, so no other process counts) and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "rusage", Path(tmp) / "stderr"
        start = time.perf_counter()
        with err.open("w") as err_file:
            subprocess.run(
                [sys.executable, "-c", _GO_BETWEEN, str(out), *argv],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                check=False,
            )
        seconds = time.perf_counter() - start
        maxrss_kib, code = (int(v) for v in out.read_text().split())
        tail = err.read_text()[-2000:] if code else ""
    return {
        "argv": list(argv),
        "exit_code": code,
        "peak_rss_bytes": maxrss_kib * 1024,  # KiB on Linux
        "seconds": seconds,
        "stderr_tail": tail,
    }
