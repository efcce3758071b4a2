"""Part e, on a GPU: the bf16 + channels_last fast path with and without ``torch.compile``,
and what several workers packed on one GPU train: epochs and images per second, and the time
to a fixed validation accuracy (trials per hour would favour many workers training little)."""

from __future__ import annotations

import statistics
from typing import Any

import torch

from fmnist.config import RunConfig, replace
from fmnist.models import build_model, count_macs
from fmnist.train import resolve_device
from fmnist_bench import trainer
from fmnist_bench.bench import Bench, show
from fmnist_bench.machine import peak_flops
from fmnist_bench.parts.studies import timed_run

TARGET_ACC = 0.90  # validation accuracy the packing figures time; `resnet` trials reach it


def fast_pace(
    config: RunConfig,
    *,
    compile: bool,
    images: int = trainer.EPOCH_IMAGES,
    epochs: int = 3,
    device: str = "auto",
    data_dir=None,
    peak: float | None = None,
) -> dict[str, Any]:
    """bf16 + channels_last at the config's batch size, optionally compiled: images/s,
    seconds per 60k-image epoch, the first epoch's extra time (compilation, autotuning) apart,
    and achieved FLOP/s against ``peak`` (default: the data-sheet peak of a known GPU)."""
    device = resolve_device(device)
    config = replace(config, precision="bf16", channels_last=True, compile=compile)
    row = trainer.throughput(config, images=images, epochs=epochs, device=device, data_dir=data_dir)
    seconds = row["epoch_seconds"]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    # 2 FLOPs per multiply-accumulate; the backward pass costs about twice the forward.
    flops = 6 * count_macs(build_model(config.model)) * row["images_per_s"]
    peak = peak if peak is not None else peak_flops(device)
    return row | {
        "compile": compile,
        "first_epoch_extra_seconds": seconds[0] - steady,
        "seconds_per_60k": trainer.EPOCH_IMAGES / row["images_per_s"],
        "flops_per_s": flops,
        "peak_flops_per_s": peak,
        "of_peak": flops / peak if peak else None,
    }


def packing_figures(trials, *, wall_seconds: float, target_acc: float) -> dict[str, Any]:
    """What packing buys, counted in work rather than trials (more workers that each train
    fewer epochs finish more trials per hour without doing more): epochs and training images
    per second on the GPU, and the seconds until some trial's validation accuracy first
    reached ``target_acc`` (None if none did), from the trials' stored epoch times."""
    start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    epochs = images = 0
    reached: list[float] = []
    for t in trials:
        trained = t.user_attrs.get("trained_epochs", [])
        per_epoch = t.user_attrs.get("train_images") or _train_images(t)
        epochs += len(trained)
        images += len(trained) * per_epoch
        if start is None or t.datetime_start is None:
            continue
        offset = (t.datetime_start - start).total_seconds()
        done = offset
        for epoch, seconds in zip(trained, t.user_attrs.get("epoch_seconds", []), strict=False):
            done += seconds
            if t.intermediate_values.get(epoch, 0.0) >= target_acc:
                reached.append(done)
                break
    return {
        "trials": len(trials),
        "epochs": epochs,
        "wall_seconds": wall_seconds,
        "epochs_per_s": epochs / wall_seconds,
        "images_per_s": images / wall_seconds,
        "trials_per_hour": len(trials) * 3600 / wall_seconds,
        "target_acc": target_acc,
        "seconds_to_target": min(reached) if reached else None,
    }


def _train_images(t) -> int:
    data = t.user_attrs.get("config", {}).get("data", {})
    return (data.get("subset") or trainer.EPOCH_IMAGES) - data.get("val_size", 0)


def packed(b: Bench, study: str, k: int, *, seconds: float, target_acc: float = TARGET_ACC):
    """``k`` worker processes on the bench's device for ``seconds``: epochs and images per
    second on that device and the time to ``target_acc`` (``packing_figures``)."""
    on_gpu = b.on_gpu
    done = timed_run(
        b.fresh_study(
            f"packed-{k}",
            study,
            timeout=seconds,
            gpus=(torch.device(b.device).index or 0,) if on_gpu else (),
            workers_per_gpu=k if on_gpu else 1,
            workers=1 if on_gpu else k,
        )
    )
    trials = done.study.get_trials(deepcopy=False)
    figures = packing_figures(trials, wall_seconds=done.wall_seconds, target_acc=target_acc)
    finished = len(done.finished)  # the trial count and rate: finished ones only
    return (
        {"workers": k}
        | figures
        | {
            "trials": finished,
            "trials_per_hour": finished * 3600 / done.wall_seconds,
        }
    )


def run(b: Bench) -> dict[str, Any]:
    if not b.on_gpu:
        reason = "no CUDA device: the GPU figures are pending a GPU machine"
        print(f"\ne. GPU: skipped ({reason})")
        return {"gpu": {"skipped": reason}}
    args = b.opts
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    paces = {
        name: [
            fast_pace(
                trainer.run_config(name),
                compile=c,
                epochs=args.gpu_epochs,
                device=b.device,
                data_dir=args.data_dir,
                peak=peak,
            )
            for c in (False, True)
        ]
        for name in args.run_configs
    }
    show(
        f"e. GPU fast path, bf16 + channels_last, 60k images x {args.gpu_epochs} epochs",
        [
            "run config",
            "compile",
            "images/s",
            "s / 60k epoch",
            "first epoch extra s",
            "TFLOP/s",
            "of peak",
        ],
        [
            [
                name,
                r["compile"],
                r["images_per_s"],
                r["seconds_per_60k"],
                r["first_epoch_extra_seconds"],
                r["flops_per_s"] / 1e12,
                r["of_peak"],
            ]
            for name, rows in paces.items()
            for r in rows
        ],
    )
    packs = [packed(b, args.pack_study, k, seconds=args.pack_seconds) for k in args.packs]
    base = packs[0]["images_per_s"] if packs else None
    show(
        f"e. trials packed on one GPU, {args.pack_study!r} study, {args.pack_seconds:.0f} s each",
        ["workers", "trials", "epochs", "epochs/s", "images/s", "x one",
         f"s to val {TARGET_ACC:.2f}"],
        [
            [
                p["workers"],
                p["trials"],
                p["epochs"],
                p["epochs_per_s"],
                p["images_per_s"],
                p["images_per_s"] / base if base else None,
                p["seconds_to_target"],
            ]
            for p in packs
        ],
    )  # fmt: skip
    return {"gpu": {"fast_path": paces, "packed": packs}}
