"""Part a: training images/s of our trainer against the 2020 pipeline, same network, images
and machine."""

from __future__ import annotations

import functools
from typing import Any

from fmnist.config import OptimConfig, replace
from fmnist_bench import pipeline2020, trainer
from fmnist_bench.bench import Bench, show
from fmnist_bench.clock import best_of


def run(b: Bench) -> dict[str, Any]:
    opts = b.opts
    out: dict[str, Any] = {}
    default_batch = OptimConfig().batch_size
    for name in opts.run_configs:
        config = trainer.run_config(name)
        if opts.precision:
            config = replace(config, precision=opts.precision)
        common = {
            "images": opts.images,
            "epochs": opts.epochs,
            "device": b.device,
            "data_dir": opts.data_dir,
        }
        measure = {
            pipeline2020.JSON_NAME: functools.partial(
                pipeline2020.throughput, config, workers=opts.pipeline2020_workers, **common
            ),
            "ours_batch64": functools.partial(
                trainer.throughput, config, batch_size=pipeline2020.BATCH, **common
            ),
        }
        # At batch 64 ours and the 2020 pipeline differ only in the pipeline; the default
        # batch shows what the trainer does when left alone.
        if default_batch != pipeline2020.BATCH:
            measure["ours_defaults"] = functools.partial(
                trainer.throughput, config, batch_size=default_batch, **common
            )
        p = best_of(measure, opts.repeats)
        p.setdefault("ours_defaults", p["ours_batch64"])
        base = p[pipeline2020.JSON_NAME]["images_per_s"]
        p["ratio_batch64"] = p["ours_batch64"]["images_per_s"] / base
        p["ratio_defaults"] = p["ours_defaults"]["images_per_s"] / base
        out[name] = p
    show(
        f"a. training throughput, {opts.images} images x {opts.epochs} epochs, fastest timed "
        f"epoch of {opts.repeats} run(s)",
        ["run config", "pipeline", "batch", "precision", "images/s", "x 2020", "every run"],
        [
            [
                name,
                label,
                r["batch_size"],
                r["precision"],
                r["images_per_s"],
                r["images_per_s"] / p[pipeline2020.JSON_NAME]["images_per_s"],
                " ".join(f"{v:.0f}" for v in r["images_per_s_runs"]),
            ]
            for name, p in out.items()
            for label, r in (
                ("2020 pipeline (PIL, DataLoader)", p[pipeline2020.JSON_NAME]),
                ("ours, batch 64", p["ours_batch64"]),
                ("ours, defaults", p["ours_defaults"]),
            )
        ],
    )
    return {"throughput": out}
