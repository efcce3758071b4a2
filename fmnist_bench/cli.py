"""``fmnist-search bench``: runs the parts asked for on this machine, prints a table per part as
it goes and writes every figure, with the machine and the command, as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fmnist.train import resolve_device
from fmnist_bench import machine, trainer
from fmnist_bench.parts import DEFAULT_PARTS, PARTS, Bench, show
from fmnist_bench.targets import targets
from search.errors import SearchError
from search.text import fmt


def _csv(kind):
    def parse(text: str):
        return tuple(kind(v) for v in text.split(",") if v)

    return parse


def _work_dir(path: str | None):
    """The parts' scratch folder: the one asked for, kept, or a temporary one."""
    if path is None:
        return tempfile.TemporaryDirectory(prefix="fmnist-bench-")
    Path(path).mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(path)


def cmd_bench(args: argparse.Namespace) -> int:
    parts = frozenset(args.parts)
    if unknown := parts - PARTS.keys():
        raise SearchError(
            f"unknown bench part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}"
        )
    device = resolve_device(args.device)
    on_gpu = device.startswith("cuda")
    # On a CPU, more and shorter epochs: the fastest of several is robust to other work.
    args.images = args.images or (trainer.EPOCH_IMAGES if on_gpu else 2048)
    args.epochs = args.epochs or (2 if on_gpu else 3)
    # Interleaved runs on a CPU: a shared machine's drift then hits every pipeline alike.
    args.repeats = args.repeats or (1 if on_gpu else 2)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "argv": sys.argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine.probe(device),
        "options": {k: v for k, v in vars(args).items() if k != "func"},
    }
    m = results["machine"]
    busy = m["cpu_busy"]
    print(
        f"bench on {m['device']}, {m['cpu']}, {m['cores']} cores, bf16 instructions: "
        f"{fmt(m['cpu_bf16'])}, cores busy with other work: "
        f"{'unknown' if busy is None else f'{busy:.0%}'}"
    )
    if busy is not None and busy > 0.15:
        print("note: other work is running on these cores; every figure below is slowed by it")
    timings = results["part_seconds"] = {}
    with _work_dir(args.work_dir) as tmp:
        bench = Bench(args, device, Path(tmp), parts)
        ran = set()
        for part, measure in PARTS.items():
            if part not in parts or measure in ran:
                continue  # parts that share a function share its runs
            ran.add(measure)
            t = time.perf_counter()
            results.update(measure(bench))
            timings[part] = time.perf_counter() - t
    results["targets"] = targets(results, on_gpu)
    results["seconds"] = time.perf_counter() - start
    results["cpu_busy_after"] = machine.cpu_busy()
    if results["targets"]:
        show(
            "targets",
            ["target", "figure", "holds"],
            [[t["target"], t["value"], t["holds"]] for t in results["targets"]],
        )
    path = Path(args.json or f"runs/bench/bench-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nbench took {results['seconds']:.0f} s; wrote {path}")
    return 0


def add_subcommand(sub, add_data) -> None:
    p = sub.add_parser(
        "bench",
        help="measure training speed, trial overhead, search efficiency and memory",
        description="Measure, on this machine: (a) training images/s of our trainer against "
        "the 2020 report's PIL + DataLoader pipeline on the same model and images; (b) trial "
        "overhead and (c) pruned-vs-unpruned search over a study; (d) a worker's peak "
        "memory; (e) on a GPU, the bf16 fast path with and without torch.compile and "
        "packed trials; on request (peer) Optuna's own Lightning recipe and one of our "
        "presets searching for the same time, each selected model scored on the test set. "
        "Prints tables and writes JSON.",
    )
    p.add_argument(
        "--parts",
        type=_csv(str),
        default=DEFAULT_PARTS,
        help=f"comma-separated, from {', '.join(PARTS)} "
        f"(default {','.join(DEFAULT_PARTS)}; gpu is skipped without CUDA)",
    )
    p.add_argument(
        "--run-configs",
        "--presets",  # the flag's first name
        dest="run_configs",
        type=_csv(str),
        default=("vgg", "resnet"),
        help="run configs to measure, shipped names or TOML files (default vgg,resnet)",
    )
    p.add_argument(
        "--images",
        type=int,
        help="training images per throughput epoch (default 2048 on CPU, 60000 on GPU)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs per throughput run; the first is not timed, the fastest other counts "
        "(default 3 on CPU, 2 on GPU)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        help="runs of each throughput measurement, interleaved; the fastest counts "
        "(default 2 on CPU, 1 on GPU)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "32", "bf16"),
        help="our trainer's precision in the throughput part (default: the config's, auto)",
    )
    p.add_argument(
        "--pipeline2020-workers",
        "--report-workers",  # the flag's first name
        dest="pipeline2020_workers",
        type=int,
        default=0,
        help="DataLoader workers of the 2020 pipeline (default 0)",
    )
    p.add_argument(
        "--study",
        default="quick",
        help="study preset for overhead, search and memory (default quick)",
    )
    p.add_argument("--n-trials", type=int, help="trials per search run (default: the study's)")
    p.add_argument(
        "--memory-trials",
        type=int,
        default=2,
        help="trials the memory part's worker runs (default 2)",
    )
    p.add_argument(
        "--gpu-epochs",
        type=int,
        default=3,
        help="60k-image epochs per GPU fast-path run (default 3)",
    )
    p.add_argument(
        "--packs",
        type=_csv(int),
        default=(1, 2, 4, 8),
        help="worker counts to pack on one GPU (default 1,2,4,8)",
    )
    p.add_argument(
        "--pack-study", default="resnet", help="study for packed trials (default resnet)"
    )
    p.add_argument(
        "--pack-seconds",
        type=float,
        default=120.0,
        help="seconds each packing level starts trials for (default 120)",
    )
    p.add_argument(
        "--peak-tflops",
        type=float,
        help="the GPU's peak bf16 TFLOP/s (default: the data sheet's, for known GPUs)",
    )
    p.add_argument(
        "--accuracy-images",
        type=int,
        default=5000,
        help="training images per run of the accuracy part (default 5000)",
    )
    p.add_argument(
        "--accuracy-epochs",
        type=int,
        default=3,
        help="epochs per run of the accuracy part (default 3)",
    )
    p.add_argument(
        "--accuracy-seeds",
        type=int,
        default=3,
        help="seeds per precision in the accuracy part (default 3)",
    )
    p.add_argument(
        "--peer-seconds",
        type=float,
        default=600.0,
        help="seconds of search for each side of the peer part (default 600)",
    )
    p.add_argument(
        "--peer-study",
        default="cpu",
        help="our study preset set beside Optuna's recipe in the peer part (default cpu)",
    )
    p.add_argument(
        "--peer-images",
        type=int,
        help="training images both sides of the peer part train on (default: all 60k; "
        "fewer for quick checks only)",
    )
    p.add_argument(
        "--json", help="where to write the figures (default runs/bench/bench-<time>.json)"
    )
    p.add_argument(
        "--work-dir",
        help="keep the studies, checkpoints and model cards the parts make in this folder, "
        "e.g. to run `confirm` on the peer part's study (default: a temporary folder, removed)",
    )
    add_data(p)
    p.set_defaults(func=cmd_bench)
