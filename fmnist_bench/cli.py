"""``fmnist-bench``: measures on this machine. ``fmnist-bench run`` runs the parts asked for,
prints a table per part as it goes and writes every figure, with the machine and the command,
as JSON. One subcommand per kind of measurement, so another (a GPU check, a baselines run)
is one more ``add_parser``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fmnist.train import resolve_device
from fmnist_bench import gpu_check, machine, scale
from fmnist_bench.bench import Bench, show
from fmnist_bench.gpu_check import CheckOptions
from fmnist_bench.options import BaselinesOptions, BenchOptions, ScaleOptions
from fmnist_bench.parts import PARTS, baselines, check
from fmnist_bench.targets import targets
from search.cli import OneLineParser, guarded
from search.options import add_flags, from_args
from search.text import fmt

RUN_DESCRIPTION = (
    "Measure, on this machine: (a) training images/s of our trainer against the 2020 "
    "report's PIL + DataLoader pipeline on the same model and images (throughput); (b) trial "
    "overhead (overhead) and (c) pruned-vs-unpruned search over a study (search); (d) a "
    "worker's peak memory (memory); (e) on a GPU, the bf16 fast path with and without "
    "torch.compile and packed trials (gpu); on request, precision x memory format (fastpath), "
    "fp32 against bf16 accuracy (accuracy), and Optuna's own Lightning recipe and one of our "
    "presets searching for the same time, each selected model scored on the test set (peer). "
    "Prints tables and writes JSON."
)


def _work_dir(path: str | None):
    """The parts' scratch folder: the one asked for, kept, or a temporary one."""
    if path is None:
        return tempfile.TemporaryDirectory(prefix="fmnist-bench-")
    Path(path).mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(path)


def _header(opts: Any, device: str) -> dict[str, Any]:
    """What every bench JSON opens with: the command, when, the machine and the options."""
    return {
        "argv": sys.argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine.probe(device),
        "options": dataclasses.asdict(opts),
    }


def run(opts: BenchOptions) -> int:
    """Run the parts ``opts`` asks for; write their figures as JSON."""
    check(opts.parts)
    device = resolve_device(opts.device)
    opts = opts.for_device(on_gpu=device.startswith("cuda"))
    start = time.perf_counter()
    results = _header(opts, device)
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
    with _work_dir(opts.work_dir) as tmp:
        bench = Bench(opts, device, Path(tmp))
        ran = set()
        for part, measure in PARTS.items():
            if part not in bench.parts or measure in ran:
                continue  # parts that share a function share its runs
            ran.add(measure)
            t = time.perf_counter()
            results.update(measure(bench))
            timings[part] = time.perf_counter() - t
    results["targets"] = targets(results, bench.on_gpu)
    results["seconds"] = time.perf_counter() - start
    results["cpu_busy_after"] = machine.cpu_busy()
    if results["targets"]:
        show(
            "targets",
            ["target", "figure", "holds"],
            [[t["target"], t["value"], t["holds"]] for t in results["targets"]],
        )
    path = Path(opts.json or f"runs/bench/bench-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nbench took {results['seconds']:.0f} s; wrote {path}")
    return 0


BASELINES_DESCRIPTION = (
    "Ours (fmnist-search auto) against what a user would do instead with the same wall time: "
    "the preset's best known recipe trained for the whole budget, random search, one-epoch "
    "top-K, and Optuna's recipe; each method's final training counted in its budget and its "
    "model scored once on the test set. Prints the table, draws every method's anytime curve "
    "beside the JSON (same name, .png) and writes JSON."
)


def run_baselines(opts: BaselinesOptions) -> int:
    """Every method of ``fmnist_bench.parts.baselines`` for ``opts.budget_s``; JSON and PNG,
    the JSON written after each run so that the same command continues a bench cut short."""
    device = resolve_device(opts.device)
    start = time.perf_counter()
    path = Path(opts.json or f"runs/bench/baselines-{time.strftime('%Y%m%d-%H%M%S')}.json")
    earlier = baselines.earlier_runs(path, opts)
    # the file's options name its whole table: a continuation of some methods adds to it
    results = _header(dataclasses.replace(opts, methods=earlier.table(opts)), device)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(figures: dict[str, Any]) -> None:
        results.update(figures, seconds=time.perf_counter() - start)
        path.write_text(json.dumps(results, indent=2, default=str))

    with _work_dir(opts.work_dir) as tmp:
        figure = path.with_suffix(".png")
        results.update(baselines.run(opts, device, Path(tmp), figure, write, earlier))
    results["seconds"] = time.perf_counter() - start
    results["cpu_busy_after"] = machine.cpu_busy()
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nbaselines took {results['seconds']:.0f} s; wrote {path}")
    return 0


def run_scale(opts: ScaleOptions) -> int:
    """Every cell and drill of ``fmnist_bench.scale``; the table and the JSON."""
    start = time.perf_counter()
    results = _header(opts, "cpu")
    path = Path(opts.json or f"runs/bench/scale-{time.strftime('%Y%m%d-%H%M%S')}.json")
    earlier = scale.earlier_cells(path, opts)
    path.parent.mkdir(parents=True, exist_ok=True)
    commit = results["machine"].get("git_commit")

    def write(figures: dict[str, Any]) -> None:
        for cell in figures["cells"]:
            cell.setdefault("commit", commit)
        results.update(figures, seconds=time.perf_counter() - start)
        path.write_text(json.dumps(results, indent=2, default=str))

    with _work_dir(opts.work_dir) as tmp:
        results.update(scale.run(opts, Path(tmp), on_cell=write, earlier=earlier))
    results["seconds"] = time.perf_counter() - start
    results["cpu_busy_after"] = machine.cpu_busy()
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nscale took {results['seconds']:.0f} s; wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="fmnist-bench",
        description="Measure fmnist-search on this machine: speed, overhead, memory, and "
        "accuracy against Optuna's own recipe.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "run",
        help="measure training speed, trial overhead, search efficiency and memory",
        description=RUN_DESCRIPTION + f" Parts: {', '.join(PARTS)}.",
    )
    add_flags(p, BenchOptions)
    p.set_defaults(func=lambda args: run(from_args(BenchOptions, args)))
    p = sub.add_parser(
        "gpu-check",
        help="the prepared check for a lent GPU (six minutes on one H200; --budget tiny on a CPU)",
        description=gpu_check.__doc__,
    )
    add_flags(p, CheckOptions)
    p.set_defaults(func=lambda args: gpu_check.check(from_args(CheckOptions, args)) and 0)
    p = sub.add_parser(
        "baselines",
        help="ours against the recipe, random search, one-epoch top-K and Optuna's recipe, "
        "at equal wall time",
        description=BASELINES_DESCRIPTION,
    )
    add_flags(p, BaselinesOptions)
    p.set_defaults(func=lambda args: run_baselines(from_args(BaselinesOptions, args)))
    p = sub.add_parser(
        "scale",
        help="many simulated workers (real claim, heartbeat, sampler, pruner; a sleep for "
        "training) on real servers: trials/s, lock wait and hold, connections, fault drills",
        description=scale.__doc__,
    )
    add_flags(p, ScaleOptions)
    p.set_defaults(func=lambda args: run_scale(from_args(ScaleOptions, args)))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("fmnist-bench", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
