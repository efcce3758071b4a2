"""``fmnist-search bench``: our trainer against the report's pipeline, trial overhead and
pruned-against-unpruned search over a study, a worker's peak memory and, on a GPU, the fast
path with and without torch.compile and trials packed on one GPU. Prints a table per part as
it goes and writes every figure, with the machine and the command, as JSON.

The parts that need no Optuna (throughput, memory, the fast path) are in ``fmnist/bench.py``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from fmnist import bench
from fmnist.config import OptimConfig, replace
from fmnist.train import resolve_device
from search.errors import SearchError
from search.run import RunOptions, start
from search.study import resolve
from search.study.preset import preset_path

PARTS = ("throughput", "overhead", "search", "memory", "gpu", "fastpath", "accuracy")
DEFAULT_PARTS = ("throughput", "overhead", "search", "memory", "gpu")
GIB = 2**30


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [header] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.rjust(w) if j else c.ljust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# -- a: throughput --------------------------------------------------------------------------


def throughput(args: argparse.Namespace, device: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    default_batch = OptimConfig().batch_size
    for name in args.presets:
        config = bench.preset(name)
        if args.precision:
            config = replace(config, precision=args.precision)
        common = {
            "images": args.images,
            "epochs": args.epochs,
            "device": device,
            "data_dir": args.data_dir,
        }
        measure = {
            "report": functools.partial(
                bench.report, config, workers=args.report_workers, **common
            ),
            "ours_batch64": functools.partial(
                bench.ours, config, batch_size=bench.REPORT_BATCH, **common
            ),
        }
        # At batch 64 ours and the report differ only in the pipeline; the default batch
        # shows what the trainer does when left alone.
        if default_batch != bench.REPORT_BATCH:
            measure["ours_defaults"] = functools.partial(
                bench.ours, config, batch_size=default_batch, **common
            )
        p = bench.best_of(measure, args.repeats)
        p.setdefault("ours_defaults", p["ours_batch64"])
        p["ratio_batch64"] = p["ours_batch64"]["images_per_s"] / p["report"]["images_per_s"]
        p["ratio_defaults"] = p["ours_defaults"]["images_per_s"] / p["report"]["images_per_s"]
        out[name] = p
    _table(
        f"a. training throughput, {args.images} images x {args.epochs} epochs, fastest timed "
        f"epoch of {args.repeats} run(s)",
        ["preset", "pipeline", "batch", "precision", "images/s", "x report", "every run"],
        [
            [
                name,
                label,
                r["batch_size"],
                r["precision"],
                r["images_per_s"],
                r["images_per_s"] / p["report"]["images_per_s"],
                " ".join(f"{v:.0f}" for v in r["images_per_s_runs"]),
            ]
            for name, p in out.items()
            for label, r in (
                ("report (PIL, DataLoader)", p["report"]),
                ("ours, batch 64", p["ours_batch64"]),
                ("ours, defaults", p["ours_defaults"]),
            )
        ],
    )
    return out


# -- b, c: trial overhead and search efficiency -----------------------------------------------


def _without_pruner(study: str, work: Path) -> Path:
    path = preset_path(study)
    data = tomllib.loads(path.read_text()) | {"pruner": {"name": "none"}}
    out = work / "no-pruner" / path.name  # same stem, so the same study name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tomli_w.dumps(data))
    return out


def run_study(
    study: str | Path, *, label: str, work: Path, n_trials: int | None, device: str, data_dir
) -> dict[str, Any]:
    """Run ``study`` in this process on a fresh SQLite file; wall time, epochs trained, best
    value, and per trial its wall time (ask to tell), step time and the difference."""
    import optuna

    clocks: dict[int, bench.StepClock] = {}

    def clock(number: int) -> list[bench.StepClock]:
        clocks[number] = bench.StepClock()
        return [clocks[number]]

    opts = RunOptions(
        study=str(study),
        n_trials=n_trials,
        storage=f"sqlite:///{work}/{label}.db",
        out_dir=str(work / label),
        device=device,
        data_dir=data_dir,
        trial_callbacks=clock,
    )
    begin = time.perf_counter()
    result = start(opts)
    wall = time.perf_counter() - begin
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = [t for t in result.get_trials(deepcopy=False) if t.state in finished]
    per_trial = []
    for t in trials:
        trial_wall = (t.datetime_complete - t.datetime_start).total_seconds()
        steps = clocks[t.number].step_seconds if t.number in clocks else None
        per_trial.append(
            {
                "number": t.number,
                "state": t.state.name,
                "epochs": len(t.intermediate_values),
                "wall_seconds": trial_wall,
                "step_seconds": steps,
                "overhead_seconds": trial_wall - steps if steps is not None else None,
            }
        )
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    preset = resolve(str(study)).preset
    return {
        "study": preset.name,
        "pruner": preset.pruner.name,
        "trials": len(trials),
        "pruned": len(trials) - len(complete),
        "epochs_trained": sum(p["epochs"] for p in per_trial),
        "epochs_unpruned": len(trials) * preset.epochs,
        "wall_seconds": wall,
        # The first objective is validation accuracy, in a Pareto study as well.
        "best_val_acc": max((t.values[0] for t in complete), default=None),
        "per_trial": per_trial,
    }


def overhead_summary(run: dict[str, Any]) -> dict[str, Any]:
    timed = [p for p in run["per_trial"] if p["overhead_seconds"] is not None]
    if not timed:
        return {"trials": 0}
    over = [p["overhead_seconds"] for p in timed]
    walls = [p["wall_seconds"] for p in timed]
    median_over, median_wall = statistics.median(over), statistics.median(walls)
    return {
        "trials": len(timed),
        "median_seconds": median_over,
        "max_seconds": max(over),
        "first_trial_seconds": over[0],  # in a fresh worker it also loads the data
        "median_trial_seconds": median_wall,
        "median_fraction": median_over / median_wall,
        "limit_seconds": max(1.0, 0.02 * median_wall),
    }


def search_parts(
    args: argparse.Namespace, device: str, work: Path, parts: set[str]
) -> dict[str, Any]:
    """b over the study as it is; c adds the same study without its pruner."""
    studies: dict[str, str | Path] = {"pruned": args.study}
    if "search" in parts:
        studies["unpruned"] = _without_pruner(args.study, work)
    runs = {
        label: run_study(
            study,
            label=label,
            work=work,
            n_trials=args.n_trials,
            device=device,
            data_dir=args.data_dir,
        )
        for label, study in studies.items()
    }
    overhead = {label: overhead_summary(r) for label, r in runs.items()}
    _table(
        f"b. trial overhead over the {args.study!r} study (wall time minus step time)",
        ["run", "trials", "median s", "max s", "first s", "median trial s", "fraction"],
        [
            [
                label,
                o.get("trials"),
                o.get("median_seconds"),
                o.get("max_seconds"),
                o.get("first_trial_seconds"),
                o.get("median_trial_seconds"),
                o.get("median_fraction"),
            ]
            for label, o in overhead.items()
        ],
    )
    if "search" in parts:
        _table(
            f"c. search efficiency, {args.study!r} study",
            ["pruner", "trials", "pruned", "epochs", "of unpruned", "wall s", "best val acc"],
            [
                [
                    r["pruner"],
                    r["trials"],
                    r["pruned"],
                    r["epochs_trained"],
                    r["epochs_unpruned"],
                    r["wall_seconds"],
                    f"{r['best_val_acc']:.4f}" if r["best_val_acc"] is not None else None,
                ]
                for r in runs.values()
            ],
        )
        return {"overhead": overhead, "search": runs}
    return {"overhead": overhead, "overhead_run": runs["pruned"]}


# -- d: memory ------------------------------------------------------------------------------


def memory(args: argparse.Namespace, device: str, work: Path) -> dict[str, Any]:
    """A worker process as a user starts it, ``fmnist-search run``, on fresh storage."""
    argv = RunOptions(
        study=args.study,
        storage=f"sqlite:///{work}/memory.db",
        out_dir=str(work / "memory"),
        device=device,
        n_trials=args.memory_trials,
        data_dir=args.data_dir or None,
    ).command()
    out = bench.peak_rss(argv) | {"trials": args.memory_trials}
    if out["exit_code"] != 0:
        raise SearchError(f"the memory part's worker failed: {out['stderr_tail'][-500:]}")
    _table(
        "d. peak resident memory of a worker process",
        ["worker", "trials", "peak RSS GiB", "seconds"],
        [[f"run --study {args.study}", out["trials"], out["peak_rss_bytes"] / GIB, out["seconds"]]],
    )
    return out


# -- e: GPU ---------------------------------------------------------------------------------


def packed(study: str, k: int, *, seconds: float, device: str, data_dir, work: Path):
    """Trials per hour with ``k`` worker processes on one device, for ``seconds``."""
    import torch

    on_gpu = device.startswith("cuda")
    opts = RunOptions(
        study=study,
        timeout=seconds,
        storage=f"sqlite:///{work}/packed-{k}.db",
        out_dir=str(work / f"packed-{k}"),
        data_dir=data_dir,
        device=device,
        gpus=(torch.device(device).index or 0,) if on_gpu else (),
        workers_per_gpu=k if on_gpu else 1,
        workers=1 if on_gpu else k,
    )
    begin = time.perf_counter()
    result = start(opts)
    wall = time.perf_counter() - begin
    finished = [
        t for t in result.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")
    ]
    return {
        "workers": k,
        "trials": len(finished),
        "wall_seconds": wall,
        "trials_per_hour": len(finished) * 3600 / wall,
    }


def gpu(args: argparse.Namespace, device: str, work: Path) -> dict[str, Any]:
    if not device.startswith("cuda"):
        reason = "no CUDA device: the GPU figures are pending a GPU machine"
        print(f"\ne. GPU: skipped ({reason})")
        return {"skipped": reason}
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    paces = {
        name: [
            bench.fast_pace(
                bench.preset(name),
                compile=c,
                epochs=args.gpu_epochs,
                device=device,
                data_dir=args.data_dir,
                peak=peak,
            )
            for c in (False, True)
        ]
        for name in args.presets
    }
    _table(
        f"e. GPU fast path, bf16 + channels_last, 60k images x {args.gpu_epochs} epochs",
        [
            "preset",
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
    packs = [
        packed(
            args.pack_study,
            k,
            seconds=args.pack_seconds,
            device=device,
            data_dir=args.data_dir,
            work=work,
        )
        for k in args.packs
    ]
    base = packs[0]["trials_per_hour"] if packs else None
    _table(
        f"e. trials packed on one GPU, {args.pack_study!r} study, {args.pack_seconds:.0f} s each",
        ["workers", "trials", "wall s", "trials/hour", "x one"],
        [
            [
                p["workers"],
                p["trials"],
                p["wall_seconds"],
                p["trials_per_hour"],
                p["trials_per_hour"] / base if base else None,
            ]
            for p in packs
        ],
    )
    return {"fast_path": paces, "packed": packs}


# -- optional parts: the measurements behind the CPU defaults ---------------------------------


def fastpath(args: argparse.Namespace, device: str) -> dict[str, Any]:
    out = {
        name: bench.fast_path_grid(
            bench.preset(name),
            images=args.images,
            epochs=args.epochs,
            repeats=args.repeats,
            device=device,
            data_dir=args.data_dir,
        )
        for name in args.presets
    }
    _table(
        f"fast path: precision x memory format, ours at the preset's batch size, fastest "
        f"timed epoch of {args.repeats} run(s)",
        ["preset", "precision, memory format", "images/s", "x fp32 NCHW", "every run"],
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
    return out


def accuracy(args: argparse.Namespace, device: str) -> dict[str, Any]:
    out = {}
    for name in args.presets:
        runs = bench.precision_accuracy(
            bench.preset(name),
            images=args.accuracy_images,
            epochs=args.accuracy_epochs,
            seeds=range(args.accuracy_seeds),
            device=device,
            data_dir=args.data_dir,
        )
        final = {
            p: [r["val_acc"][-1] for r in runs if r["precision"] == p]
            for p in ("32-true", "bf16-mixed")
        }
        gaps = [b - f for f, b in zip(final["32-true"], final["bf16-mixed"], strict=True)]
        out[name] = {
            "runs": runs,
            "mean_final": {p: statistics.mean(v) for p, v in final.items()},
            "bf16_minus_fp32": gaps,
            "mean_gap": statistics.mean(gaps),
        }
    _table(
        f"accuracy: fp32 against bf16, same seeds, {args.accuracy_images} training images, "
        f"{args.accuracy_epochs} epochs",
        ["preset", "seed", "precision", "val acc per epoch", "seconds"],
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
    _table(
        "accuracy: final epoch, mean over seeds",
        ["preset", "fp32", "bf16", "bf16 - fp32 per seed", "mean gap"],
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
    return out


# -- targets --------------------------------------------------------------------------------


def targets(results: dict[str, Any], on_gpu: bool) -> list[dict[str, Any]]:
    """The issue's targets that this run measured, each with its figure and verdict."""
    rows = []
    want = 20.0 if on_gpu else 2.0
    for name, p in results.get("throughput", {}).items():
        rows.append(
            {
                "target": f"{name}: ours at defaults >= {want:g}x the report's images/s",
                "value": p["ratio_defaults"],
                "holds": p["ratio_defaults"] >= want,
            }
        )
    if "overhead" in results:
        o = results["overhead"]["pruned"]
        if o.get("trials"):
            rows.append(
                {
                    "target": "median trial overhead <= max(1 s, 2% of the trial)",
                    "value": o["median_seconds"],
                    "holds": o["median_seconds"] <= o["limit_seconds"],
                }
            )
    if "memory" in results and not on_gpu:
        gib = results["memory"]["peak_rss_bytes"] / GIB
        rows.append(
            {"target": "worker peak RSS <= 3 GiB on CPU", "value": gib, "holds": gib <= 3.0}
        )
    g = results.get("gpu", {})
    if "fast_path" in g and "resnet" in g["fast_path"]:
        best = min(r["seconds_per_60k"] for r in g["fast_path"]["resnet"])
        rows.append(
            {"target": "resnet <= 1 s per 60k-image epoch", "value": best, "holds": best <= 1.0}
        )
    packs = {p["workers"]: p["trials_per_hour"] for p in g.get("packed", [])}
    if 1 in packs and 4 in packs:
        gain = packs[4] / packs[1]
        rows.append(
            {
                "target": "4 packed trials >= 2.5x the trials/hour of one",
                "value": gain,
                "holds": gain >= 2.5,
            }
        )
    return rows


def _csv(kind):
    def parse(text: str):
        return tuple(kind(v) for v in text.split(",") if v)

    return parse


def cmd_bench(args: argparse.Namespace) -> int:
    parts = set(args.parts)
    if unknown := parts - set(PARTS):
        raise SearchError(
            f"unknown bench part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}"
        )
    device = resolve_device(args.device)
    on_gpu = device.startswith("cuda")
    # On a CPU, more and shorter epochs: the fastest of several is robust to other work.
    args.images = args.images or (bench.EPOCH_IMAGES if on_gpu else 2048)
    args.epochs = args.epochs or (2 if on_gpu else 3)
    # Interleaved runs on a CPU: a shared machine's drift then hits every pipeline alike.
    args.repeats = args.repeats or (1 if on_gpu else 2)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    start = time.perf_counter()
    results: dict[str, Any] = {
        "argv": sys.argv,
        "started_at": started,
        "machine": bench.machine(device),
        "options": {k: v for k, v in vars(args).items() if k != "func"},
    }
    m = results["machine"]
    busy = m["cpu_busy"]
    print(
        f"bench on {m['device']}, {m['cpu']}, {m['cores']} cores, bf16 instructions: "
        f"{_fmt(m['cpu_bf16'])}, cores busy with other work: "
        f"{'unknown' if busy is None else f'{busy:.0%}'}"
    )
    if busy is not None and busy > 0.15:
        print("note: other work is running on these cores; every figure below is slowed by it")
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
        work = Path(tmp)
        run_part = {
            "throughput": lambda: {"throughput": throughput(args, device)},
            "overhead": lambda: search_parts(args, device, work, parts),
            "search": lambda: search_parts(args, device, work, parts),
            "memory": lambda: {"memory": memory(args, device, work)},
            "gpu": lambda: {"gpu": gpu(args, device, work)},
            "fastpath": lambda: {"fastpath": fastpath(args, device)},
            "accuracy": lambda: {"accuracy": accuracy(args, device)},
        }
        timings = results["part_seconds"] = {}
        for part in PARTS:
            if part not in parts or (part == "search" and "overhead" in parts):
                continue  # overhead and search share their study runs
            t = time.perf_counter()
            results.update(run_part[part]())
            timings[part] = time.perf_counter() - t
    results["targets"] = targets(results, on_gpu)
    results["seconds"] = time.perf_counter() - start
    results["cpu_busy_after"] = bench.cpu_busy()
    if results["targets"]:
        _table(
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
        "the report's PIL + DataLoader pipeline on the same model and images; (b) trial "
        "overhead and (c) pruned-vs-unpruned search over a study; (d) a worker's peak "
        "memory; (e) on a GPU, the bf16 fast path with and without torch.compile and "
        "packed trials. Prints tables and writes JSON.",
    )
    p.add_argument(
        "--parts",
        type=_csv(str),
        default=DEFAULT_PARTS,
        help=f"comma-separated, from {', '.join(PARTS)} "
        f"(default {','.join(DEFAULT_PARTS)}; gpu is skipped without CUDA)",
    )
    p.add_argument(
        "--presets",
        type=_csv(str),
        default=("vgg", "resnet"),
        help="shipped run configs to measure (default vgg,resnet)",
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
        "--report-workers",
        type=int,
        default=0,
        help="DataLoader workers of the report's pipeline (default 0)",
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
        "--json", help="where to write the figures (default runs/bench/bench-<time>.json)"
    )
    add_data(p)
    p.set_defaults(func=cmd_bench)
