"""The measurements behind the CPU defaults (``precision = "auto"``, ``channels_last``):
images/s over fp32/bf16 x NCHW/channels_last, and validation accuracy of the same runs in fp32
and bf16."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Sequence
from typing import Any

from fmnist.config import RunConfig, replace
from fmnist.train import fit
from fmnist_bench import trainer
from fmnist_bench.bench import Bench, show
from fmnist_bench.clock import best_of


def fast_path_grid(
    config: RunConfig,
    *,
    images: int,
    epochs: int,
    repeats: int = 1,
    device: str = "auto",
    data_dir=None,
) -> dict[str, Any]:
    """Our trainer at the config's batch size for fp32/bf16 x NCHW/channels_last."""
    measure = {}
    for precision in ("32", "bf16"):
        for channels_last in (False, True):
            c = replace(config, precision=precision, channels_last=channels_last)
            label = f"{precision}-{'channels_last' if channels_last else 'nchw'}"
            measure[label] = functools.partial(
                trainer.throughput,
                c,
                images=images,
                epochs=epochs,
                device=device,
                data_dir=data_dir,
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


def fastpath(b: Bench) -> dict[str, Any]:
    opts = b.opts
    out = {
        name: fast_path_grid(
            trainer.run_config(name),
            images=opts.images,
            epochs=opts.epochs,
            repeats=opts.repeats,
            device=b.device,
            data_dir=opts.data_dir,
        )
        for name in opts.run_configs
    }
    show(
        f"fast path: precision x memory format, ours at the run config's batch size, fastest "
        f"timed epoch of {opts.repeats} run(s)",
        ["run config", "precision, memory format", "images/s", "x fp32 NCHW", "every run"],
        [
            [
                name,
                label,
                r["images_per_s"],
                r["images_per_s"] / rows["32-nchw"]["images_per_s"],
                " ".join(f"{v:.0f}" for v in r["images_per_s_runs"]),
            ]
            for name, rows in out.items()
            for label, r in rows.items()
        ],
    )
    return {"fastpath": out}


def accuracy(b: Bench) -> dict[str, Any]:
    opts = b.opts
    out = {}
    for name in opts.run_configs:
        runs = precision_accuracy(
            trainer.run_config(name),
            images=opts.accuracy_images,
            epochs=opts.accuracy_epochs,
            seeds=range(opts.accuracy_seeds),
            device=b.device,
            data_dir=opts.data_dir,
        )
        final = {
            p: [r["val_acc"][-1] for r in runs if r["precision"] == p]
            for p in ("32-true", "bf16-mixed")
        }
        gaps = [b16 - f for f, b16 in zip(final["32-true"], final["bf16-mixed"], strict=True)]
        out[name] = {
            "runs": runs,
            "mean_final": {p: statistics.mean(v) for p, v in final.items()},
            "bf16_minus_fp32": gaps,
            "mean_gap": statistics.mean(gaps),
        }
    show(
        f"accuracy: fp32 against bf16, same seeds, {opts.accuracy_images} training images, "
        f"{opts.accuracy_epochs} epochs",
        ["run config", "seed", "precision", "val acc per epoch", "seconds"],
        [
            [
                name,
                r["seed"],
                r["precision"],
                " ".join(f"{a:.4f}" for a in r["val_acc"]),
                r["seconds"],
            ]
            for name, o in out.items()
            for r in o["runs"]
        ],
    )
    show(
        "accuracy: final epoch, mean over seeds",
        ["run config", "fp32", "bf16", "bf16 - fp32 per seed", "mean gap"],
        [
            [
                name,
                f"{o['mean_final']['32-true']:.4f}",
                f"{o['mean_final']['bf16-mixed']:.4f}",
                " ".join(f"{g:+.4f}" for g in o["bf16_minus_fp32"]),
                f"{o['mean_gap']:+.4f}",
            ]
            for name, o in out.items()
        ],
    )
    return {"accuracy": out}
