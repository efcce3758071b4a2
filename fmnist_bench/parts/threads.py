"""Part f: intra-op threads per worker process. Each of K concurrent processes trains a small
VGG on the same images with T threads; what K x T costs in images/s (all processes together)
and in CPU seconds per 1,000 images is what ``search.run.launcher.threads_per_worker``'s
share-the-cores rule rests on."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import torch

from fmnist.config import DataConfig, OptimConfig, RunConfig, VGGConfig
from fmnist_bench import trainer
from fmnist_bench.bench import Bench, show

# Tiny but real: the `quick` study's small VGG on real images, two epochs (the first warms up).
CONFIG = RunConfig(
    model=VGGConfig(widths=(16, 32), convs_per_block=1, pools=2, fc_width=128),
    data=DataConfig(val_size=0),
    optim=OptimConfig(batch_size=128),
    epochs=2,
    precision="32",
)


def _train(threads: int, images: int, device: str, data_dir, out) -> None:

    torch.set_num_threads(threads)
    cpu0 = time.process_time()
    row = trainer.throughput(CONFIG, images=images, epochs=2, device=device, data_dir=data_dir)
    out.put(row | {"cpu_seconds": time.process_time() - cpu0, "threads": torch.get_num_threads()})


def grid_point(
    workers: int, threads: int, *, images: int = 4096, device: str = "cpu", data_dir=None
) -> dict[str, Any]:
    """``workers`` processes at once, ``threads`` intra-op threads each: their summed
    steady images/s (each process's fastest timed epoch) and CPU seconds per 1,000 images."""
    ctx = multiprocessing.get_context("spawn")  # a fresh torch per process, as a worker has
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_train, args=(threads, images, device, data_dir, out))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    rows = [out.get() for _ in procs]
    for p in procs:
        p.join()
    trained = sum(2 * r["images_per_epoch"] for r in rows)
    return {
        "workers": workers,
        "threads": threads,
        "threads_seen": sorted({r["threads"] for r in rows}),
        "images_per_s": sum(r["images_per_s"] for r in rows),
        "cpu_seconds_per_1k_images": 1000 * sum(r["cpu_seconds"] for r in rows) / trained,
    }


def grid(
    *, workers=(1, 2), threads=(1, 2), images: int = 4096, device: str = "cpu", data_dir=None
) -> list[dict[str, Any]]:
    return [
        grid_point(k, t, images=images, device=device, data_dir=data_dir)
        for k in workers
        for t in threads
    ]


def run(b: Bench) -> dict[str, Any]:
    rows = grid(device="cpu", data_dir=b.opts.data_dir)
    show(
        "f. threads per worker process: small VGG, 4,096 images x 2 epochs per process",
        ["workers", "threads each", "images/s, all", "CPU s / 1k images"],
        [
            [r["workers"], r["threads"], r["images_per_s"], r["cpu_seconds_per_1k_images"]]
            for r in rows
        ],
    )
    return {"threads": rows}
