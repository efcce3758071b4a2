"""Every measured figure in README.md and docs/*.md, rendered from the file a command wrote.

    python tools/docs_figures.py            # rewrite every figures region from its result file
    python tools/docs_figures.py --check    # change nothing; one line per region that differs

A figure lives in a doc between two markers, on lines of their own or inside a sentence:

    <!-- figures: bench-throughput -->
    (written by this tool from the region's result file: edit the template, never the text)
    <!-- /figures -->

The name picks an entry of ``REGIONS``: the result file, committed under ``docs/results/``
and exactly as a command wrote it (bench ``--json``, a model card, a tool's JSON), the command
that writes it, and a template that turns its JSON into Markdown. Each region ends by naming
that command and the commit the result file records. A region whose result file is absent says
so in one line: not rerun since the commit of its last figures (or not run yet), and the
command to run.

To add a figure: run its command so that it writes ``docs/results/NAME.json`` (or copy the
JSON the command wrote there, unchanged), add a ``Region`` to ``REGIONS`` with a template,
put the two markers where it goes in the doc, and run this tool. ``--check`` (which CI runs)
reads files only, so it takes a second; it fails on a region whose text is not what its
result file renders, on a result file whose recorded command line (``argv``) is not the
region's command, on an unknown or unclosed marker and on a region no doc shows.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import distributed_bench, reliability_table, suite_times  # noqa: E402

MARK = re.compile(r"<!-- figures: ([\w.-]+) -->(.*?)<!-- /figures -->", re.S)
OPEN = re.compile(r"<!-- figures: ?([^>]*?) ?-->")
CLOSE = "<!-- /figures -->"

Render = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Region:
    """One generated region: ``render`` turns ``result`` (a JSON a command wrote) into text;
    ``render`` None means no figures are shown until the result file exists and a template
    is written for it. ``since`` is the commit of the figures last shown there.
    ``continued_by``: options (each with its value) that a continuation of the command may
    add, such as ``--methods`` for a long table run some methods a session."""

    result: str
    command: str
    render: Render | None = None
    since: str = ""
    continued_by: tuple[str, ...] = ()


# What a continuation of `fmnist-bench baselines` may add to the table's command.
CONTINUED = ("--methods", "--again")


def _commit(data: dict[str, Any]) -> str:
    """The commit a result file records, in whichever place its command puts it."""
    machine = data.get("machine")  # the bench keeps it there
    bench = machine.get("git_commit") if isinstance(machine, dict) else None
    commit = bench or data.get("git_commit") or data.get("commit") or "unknown"
    dirty = "+dirty" if data.get("dirty") else ""
    return commit[:7] + commit[40:] + dirty if len(commit) >= 40 else commit + dirty


def _threads(data: dict[str, Any]) -> str:
    """Part f of the bench: threads per worker process."""
    m = data["machine"]
    busy = "unknown" if m["cpu_busy"] is None else f"{m['cpu_busy']:.0%}"
    lines = [
        f"{m['cpu']}, {m['cores']} cores, busy with other work before the run: {busy}; "
        f"torch {m['packages'].get('torch')}.",
        "",
        "| workers | threads each | images/s, all workers | CPU s per 1,000 images |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['workers']} | {r['threads']} | {r['images_per_s']:,.0f} | "
        f"{r['cpu_seconds_per_1k_images']:.3f} |"
        for r in data["threads"]
    ]
    return "\n".join(lines)


def _stat(stat: dict[str, float | None], spec: str) -> str:
    """A mean, with its std when there was more than one run."""
    if stat["mean"] is None:
        return "-"
    spread = f" +- {stat['std']:{spec}}" if stat["std"] else ""
    return f"{stat['mean']:{spec}}{spread}"


def _baselines(data: dict[str, Any]) -> str:
    """``fmnist-bench baselines``: each method's whole budget, its final training included;
    with ``--seeds`` over 1, the test's mean +- std over the final training's seeds too."""
    m, b = data["machine"], data["baselines"]
    busy = "unknown" if m["cpu_busy"] is None else f"{m['cpu_busy']:.0%}"
    seeds = b.get("seeds", 1)
    columns = [("wall s", "wall_s", ".0f"), ("trials", "trials", ".0f"),
               ("validation", "val_acc", ".4f"), ("test", "test_acc", ".4f")]  # fmt: skip
    note = ""
    if seeds > 1:
        columns.append((f"test, {seeds} seeds", "test_seeds", ".4f"))
        note = (
            f" The final training of each method with {seeds} seeds: the first in its budget "
            "(the test column), the others after it and outside it."
        )
    columns.append(("parameters", "params", ",.0f"))
    rows = [r for runs in b["runs"].values() for r in runs]
    if any("host_epoch_s" in r for r in rows):  # measured before each run, outside its budget
        columns.append(("host epoch s", "host_epoch_s", ".1f"))
        note += (
            " Host epoch s: a search epoch of the preset's recipe timed on the machine just "
            "before each run, outside its budget (a run continued in another session may have "
            "run on a faster or slower machine)."
        )
    cpus = sorted({r["cpu"] for r in rows if "cpu" in r} - {m["cpu"]})
    also = f" (some runs on {', '.join(cpus)})" if cpus else ""
    lines = [
        f"{m['cpu']}{also}, {m['cores']} cores, busy with other work before the run: {busy}; "
        f"{b['budget_s'] / 60:g} minutes for each method; {b['repeats']} repeat(s), mean +- std "
        f"where more than one.{note}",
        "",
        "| method | " + " | ".join(name for name, _, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [
        f"| {method} | " + " | ".join(_stat(s[key], spec) for _, key, spec in columns) + " |"
        for method, s in b["summary"].items()
    ]
    if data.get("partial"):
        lines += ["", "Cut short: the runs after these were not run."]
    return "\n".join(lines + _unlike_hosts(rows) + _by_commit(rows, m, "Runs", "a bench cut short"))


# Host epoch s of runs on one machine agree within a few percent (13.1 to 13.6 s on one EPYC);
# rows further apart than this ran on unlike machines.
UNLIKE_HOSTS = 1.15


def _unlike_hosts(rows: list[dict[str, Any]]) -> list[str]:
    """A line where the rows ran on machines of unlike speed: a faster one buys a method more
    epochs in the same minutes, and the table does not say so by itself."""
    speeds = [r["host_epoch_s"] for r in rows if r.get("host_epoch_s")]
    if not speeds or max(speeds) <= UNLIKE_HOSTS * min(speeds):
        return []
    slow, fast = max(speeds), min(speeds)
    return [
        "",
        f"Unlike machines: the rows' host epoch s run from {fast:.1f} to {slow:.1f} "
        f"({slow / fast:.1f} times); a method run on a faster machine trained more epochs in "
        "its minutes, so compare those rows with care.",
    ]


def _by_commit(records: list[dict[str, Any]], machine: dict[str, Any], what: str, how: str):
    """A line naming the commits ``records`` ran on, where a command continued a run cut short
    on another commit (each record names its own; else the run's)."""
    commits = Counter(r.get("commit", machine.get("git_commit")) for r in records)
    if len(commits) < 2:
        return []
    shown = ", ".join(f"{n} on {str(commit)[:7]}" for commit, n in commits.items())
    return ["", f"{what} by commit ({how}, continued by its command): {shown}."]


def _percent(stat: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if stat[k] is None else 100 * stat[k] for k in ("mean", "std")}


def _baselines_line(data: dict[str, Any]) -> str:
    """README's headline: each method's test accuracy for the same budget, ours first; with
    ``--seeds`` over 1, the mean over the final training's seeds."""
    b = data["baselines"]
    seeds = b.get("seeds", 1)
    what = f", mean over {seeds} seeds where a method has a final training" if seeds > 1 else ""

    def test(s: dict[str, Any]) -> dict[str, float | None]:
        seeded = s.get("test_seeds", {"mean": None})
        return seeded if seeds > 1 and seeded["mean"] is not None else s["test_acc"]

    scores = ", ".join(
        f"{method} {_stat(_percent(test(s)), '.2f')}%" for method, s in b["summary"].items()
    )
    return (
        f"{b['budget_s'] / 60:g} minutes on {data['machine']['cores']} CPU cores for each "
        f"method, final training included, test accuracy{what} ({b['repeats']} repeat(s)): "
        f"{scores}"
    )


def _horizon(data: dict[str, Any]) -> str:
    """``tools/horizon_check.py``: configs trained at one length, scored on validation."""
    m, runs = data["machine"], data["runs"]
    val = {r["config"]["data"]["val_size"] for r in runs.values()}
    lines = [
        f"{m['cpu']}, {m['cores']} cores; each config {data['epochs']} epochs on the training "
        f"images outside the {' or '.join(f'{v:,}' for v in sorted(val))}-image validation "
        "split, its one-cycle schedule spanning them, one seed; scored on that split.",
        "",
        "| config | dropout | FC dropout | translate px | validation, last epoch | best "
        "validation | s per epoch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in runs.items():
        model = r["config"]["model"]
        lines.append(
            f"| {name} | {model['dropout']:.2f} | {model['fc_dropout']:.2f} | "
            f"{r['config']['augment']['translate_px']} | {r['val_acc']:.4f} | "
            f"{r['best_val_acc']:.4f} | {statistics.median(r['epoch_seconds']):.1f} |"
        )
    return "\n".join(lines)


def _ms(q: dict[str, Any] | None) -> str:
    return "-" if not q or q.get("p50") is None else f"{q['p50']:.0f} / {q['p99']:.0f}"


def _claim_bench(data: dict[str, Any]) -> str:
    """``fmnist_bench.claim_bench``: one process's claims, the lease's hold and the whole claim."""
    return (
        f"{data['storage']}, {data['prefill']:,} finished and {data['running']} running "
        f"trials, {data['claims']} claims from a freshly opened storage: lease held p50 "
        f"{data['hold_ms']['p50']:.1f} ms, p99 {data['hold_ms']['p99']:.1f} ms (the first "
        f"claim {data['hold_ms_first']:.1f} ms); whole claim p50 {data['claim_ms']['p50']:.0f} "
        f"ms, p99 {data['claim_ms']['p99']:.0f} ms (the first, whose process reads the whole "
        f"study then; load average {data['load_average']:.1f}, "
        f"commit {_commit(data)})."
    )


def _scale(data: dict[str, Any]) -> str:
    """``fmnist-bench scale``: one row per cell, then the workers one study can feed."""
    m = data["machine"]
    busy = "unknown" if m["cpu_busy"] is None else f"{m['cpu_busy']:.0%}"
    cells = data["cells"]
    loads = [c["load_average"] for c in cells if "load_average" in c]
    opts = data["options"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores (busy with other work before the run: {busy}; the "
        f"simulated workers share those cores; load average {min(loads, default=0):.0f} to "
        f"{max(loads, default=0):.0f} at the cells' ends). Study preset `{opts['study']}`, "
        f"simulated trials of {data['trial_s']:g} s ({opts['epoch_s']:g} s a simulated epoch), "
        f"{opts['trials']} trials a cell, grace {opts['grace_s']:g} s. Times in ms as p50 / "
        "p99; hold (warm) leaves out each "
        "worker's first claim (its process reads the whole study then, before the lease); hold "
        "CPU is the holding thread's own CPU time in the hold (- where the run predates it).",
        "",
        "| storage | workers | study | drill | trials/s | lock wait | lock hold | hold (warm) "
        "| hold CPU | sampler | connections (per worker) | proxy CPU s | reaped (false) "
        "| finished / target | trained twice | worker RSS MB |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        if "error" in c:
            lines.append(
                f"| {c['storage']} | {c['workers']} | {c['prefill']} | {c['drill'] or ''} | "
                f"not run: {c['error']} |" + " |" * 11
            )
            continue
        conns = (
            "-"
            if c["connections"] is None
            else f"{c['connections']} ({c['connections_per_worker']:.1f})"
        )
        cpu = "-" if c["proxy_cpu_s"] is None else f"{c['proxy_cpu_s']:.0f}"
        rate = "-" if c["trials_per_s"] is None else f"{c['trials_per_s']:.1f}"
        shared = c.get("processes", c["workers"])  # files before --processes: one a worker
        workers = c["workers"] if shared == c["workers"] else f"{c['workers']} ({shared} processes)"
        lines.append(
            f"| {c['storage']} | {workers} | {c['study_at_start']:,} | {c['drill'] or ''} "
            f"| {rate} | {_ms(c['lock_wait_ms'])} | {_ms(c['lock_hold_ms'])} "
            f"| {_ms(c['lock_hold_warm_ms'])} | {_ms(c.get('lock_hold_cpu_ms'))} "
            f"| {_ms(c['sampler_ms'])} | {conns} | {cpu} "
            f"| {c['reaped']} ({c['false_reaps']}) | {c['finished']:,} / {c['target']:,}"
            f"{'' if c['exact'] else ' NOT EXACT'} | {c['configs_twice']} "
            f"| {c['worker_rss_mb']:.0f} |"
        )
    if data.get("partial"):
        lines += ["", "Cut short: the cells after these were not run."]
    lines += _by_commit([c for c in cells if "error" not in c], m, "Cells", "a run cut short")
    if data["fit"]:
        lines += [
            "",
            "Workers one study can feed, a trial's length over the lock hold's p99 (from the "
            "cell with the most workers):",
            "",
            "| storage | prefill | workers | hold p99 ms | feeds, 1-minute trials "
            "| feeds, 10-minute trials | warm hold p99 ms | feeds, 1-minute trials, warm |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for f in data["fit"]:
            cell = next(
                c
                for c in cells
                if "error" not in c and not c["drill"]
                and (c["storage"], c["prefill"], c["workers"])
                == (f["storage"], f["prefill"], f["workers"])
            )  # fmt: skip
            warm = cell["lock_hold_warm_ms"]["p99"]
            lines.append(
                f"| {f['storage']} | {f['prefill']:,} | {f['workers']} | {f['hold_p99_ms']:.0f} "
                f"| {f['feeds_per_minute_trial']:,.0f} | {10 * f['feeds_per_minute_trial']:,.0f} "
                f"| {warm:.0f} | {60_000 / warm:,.0f} |"
            )
    return "\n".join(lines)


REGIONS: dict[str, Region] = {
    "bench-throughput": Region(
        "docs/results/bench-throughput.json",
        "fmnist-bench run --parts throughput --images 1024 --epochs 6 --repeats 3 "
        "--json docs/results/bench-throughput.json",
        since="de4e2ea",
    ),
    "bench-default": Region(
        "docs/results/bench-default.json",
        "fmnist-bench run --device cpu --json docs/results/bench-default.json",
        since="8664af5",
    ),
    "bench-fastpath": Region(
        "docs/results/bench-fastpath.json",
        "fmnist-bench run --parts fastpath --run-configs vgg,resnet --images 1024 "
        "--epochs 6 --repeats 2 --json docs/results/bench-fastpath.json",
        since="de4e2ea",
    ),
    "bench-accuracy": Region(
        "docs/results/bench-accuracy.json",
        "fmnist-bench run --parts accuracy --json docs/results/bench-accuracy.json",
        since="de4e2ea",
    ),
    "bench-peer": Region(
        "docs/results/bench-peer.json",
        "fmnist-bench run --parts peer --device cpu --work-dir work "
        "--json docs/results/bench-peer.json",
        since="a3c7082",
    ),
    "bench-threads": Region(
        "docs/results/bench-threads.json",
        "fmnist-bench run --parts threads --device cpu --json docs/results/bench-threads.json",
        _threads,
        since="e9f7d89",
    ),
    "quick-card": Region(
        "docs/results/quick-card.json",
        "fmnist-search run --study quick --device cpu && fmnist-search confirm --study quick "
        "--top 2 --seeds 2 -o quick-best.toml && fmnist-search retrain quick-best.toml "
        "--seeds 3 --device cpu --out retrain-quick && cp retrain-quick/model_card.json "
        "docs/results/quick-card.json",
        since="eec35b5",
    ),
    "cpu-card": Region(
        "docs/results/cpu-card.json",
        "fmnist-search run --study cpu --device cpu && fmnist-search confirm --study cpu "
        "--top 2 --seeds 2 -o cpu-best.toml --device cpu && fmnist-search retrain "
        "cpu-best.toml --seeds 3 --device cpu --out retrain-cpu && cp "
        "retrain-cpu/model_card.json docs/results/cpu-card.json",
        since="a3c7082",
    ),
    "tiny-cpu-card": Region(
        "docs/results/tiny-cpu-card.json",
        "fmnist-search run --study tiny-cpu --device cpu && fmnist-search confirm --study "
        "tiny-cpu --top 2 --seeds 2 -o tiny-best.toml --device cpu && fmnist-search retrain "
        "tiny-best.toml --seeds 3 --device cpu --out retrain-tiny && cp "
        "retrain-tiny/model_card.json docs/results/tiny-cpu-card.json",
        since="a3c7082",
    ),
    "distributed": Region(
        "docs/results/distributed.json",
        "python tools/distributed_bench.py --trials 12 --workers 2 "
        "--json docs/results/distributed.json",
        distributed_bench.markdown,
        since="469392e",
    ),
    **{
        f"claim-bench-{kind}": Region(
            f"docs/results/claim-bench-{kind}.json",
            f"python -m fmnist_bench.claim_bench --storage {url} --prefill 1000 --running 64 "
            f"--claims 30 --json docs/results/claim-bench-{kind}.json",
            _claim_bench,
        )
        for kind, url in (
            ("sqlite", "sqlite:////tmp/claim-bench.db"),
            ("postgresql", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        )
    },
    # The same command on the code before the claim's read left the lease (0a7376d, this
    # claim_bench.py copied into a worktree of it); the doc says so beside it.
    "claim-bench-postgresql-before": Region(
        "docs/results/claim-bench-postgresql-before.json",
        "python -m fmnist_bench.claim_bench --storage "
        "postgresql+psycopg://postgres@127.0.0.1:5432/test --prefill 1000 --running 64 "
        "--claims 30 --json docs/results/claim-bench-postgresql-before.json",
        _claim_bench,
    ),
    "scale": Region(
        "docs/results/scale.json",
        "fmnist-bench scale --storages postgresql,postgresql-proxy --workers 8,32,64 "
        "--prefill 0,1000,10000 --trials 100 --epoch-s 10 --json docs/results/scale.json",
        _scale,
    ),
    "scale-10k": Region(
        "docs/results/scale-10k.json",
        "fmnist-bench scale --storages postgresql,postgresql-proxy --workers 32,64 "
        "--prefill 10000 --processes 8 --trials 100 --epoch-s 10 "
        "--json docs/results/scale-10k.json",
        _scale,
    ),
    "scale-2min": Region(
        "docs/results/scale-2min.json",
        "fmnist-bench scale --storages postgresql,postgresql-proxy --workers 64 --prefill 0 "
        "--processes 8 --trials 200 --epoch-s 60 --json docs/results/scale-2min.json",
        _scale,
    ),
    "scale-drills": Region(
        "docs/results/scale-drills.json",
        "fmnist-bench scale --workers '' --drill-prefill 300 --drills kill,restart-proxy,"
        "restart-db,stop --trials 100 --work-dir runs/bench/scale-drills "
        "--json docs/results/scale-drills.json",
        _scale,
    ),
    "baselines-15m": Region(
        "docs/results/baselines-15m.json",
        "fmnist-bench baselines --budget 15m --work-dir runs/baselines-15m "
        "--json docs/results/baselines-15m.json",
        _baselines,
    ),
    "baselines-15m-seeds": Region(
        "docs/results/baselines-15m-seeds.json",
        "fmnist-bench baselines --budget 15m --methods ours,random,recipe --seeds 3 "
        "--work-dir runs/baselines-15m-seeds --json docs/results/baselines-15m-seeds.json",
        _baselines,
    ),
    "baselines-15m-line": Region(
        "docs/results/baselines-15m.json",
        "fmnist-bench baselines --budget 15m --work-dir runs/baselines-15m "
        "--json docs/results/baselines-15m.json",
        _baselines_line,
    ),
    "baselines-15m-seeds-line": Region(
        "docs/results/baselines-15m-seeds.json",
        "fmnist-bench baselines --budget 15m --methods ours,random,recipe --seeds 3 "
        "--work-dir runs/baselines-15m-seeds --json docs/results/baselines-15m-seeds.json",
        _baselines_line,
    ),
    "baselines-15m-floors": Region(
        "docs/results/baselines-15m-floors.json",
        "fmnist-bench baselines --budget 15m --methods ours,random --seeds 3 "
        "--work-dir runs/baselines-15m-floors --json docs/results/baselines-15m-floors.json",
        _baselines,
    ),
    "baselines-15m-recipe": Region(
        "docs/results/baselines-15m-recipe.json",
        "fmnist-bench baselines --budget 15m --methods recipe "
        "--work-dir runs/baselines-15m-recipe --json docs/results/baselines-15m-recipe.json",
        _baselines,
    ),
    "baselines-15m-floors-line": Region(
        "docs/results/baselines-15m-floors.json",
        "fmnist-bench baselines --budget 15m --methods ours,random --seeds 3 "
        "--work-dir runs/baselines-15m-floors --json docs/results/baselines-15m-floors.json",
        _baselines_line,
    ),
    "baselines-15m-recipe-line": Region(
        "docs/results/baselines-15m-recipe.json",
        "fmnist-bench baselines --budget 15m --methods recipe "
        "--work-dir runs/baselines-15m-recipe --json docs/results/baselines-15m-recipe.json",
        _baselines_line,
    ),
    "baselines-60m": Region(
        "docs/results/baselines-60m.json",
        "fmnist-bench baselines --budget 60m --seeds 3 --work-dir runs/baselines-60m "
        "--json docs/results/baselines-60m.json",
        _baselines,
        continued_by=CONTINUED,
    ),
    "baselines-60m-line": Region(
        "docs/results/baselines-60m.json",
        "fmnist-bench baselines --budget 60m --seeds 3 --work-dir runs/baselines-60m "
        "--json docs/results/baselines-60m.json",
        _baselines_line,
        continued_by=CONTINUED,
    ),
    "baselines-60m-tiny": Region(
        "docs/results/baselines-60m-tiny.json",
        "fmnist-bench baselines --budget 60m --study tiny-cpu --methods ours,recipe --seeds 3 "
        "--work-dir runs/baselines-60m-tiny --json docs/results/baselines-60m-tiny.json",
        _baselines,
        continued_by=CONTINUED,
    ),
    "baselines-60m-tiny-line": Region(
        "docs/results/baselines-60m-tiny.json",
        "fmnist-bench baselines --budget 60m --study tiny-cpu --methods ours,recipe --seeds 3 "
        "--work-dir runs/baselines-60m-tiny --json docs/results/baselines-60m-tiny.json",
        _baselines_line,
        continued_by=CONTINUED,
    ),
    "horizon-20ep": Region(
        "docs/results/horizon-20ep.json",
        "python tools/horizon_check.py docs/results/horizon/trial4.toml "
        "docs/results/horizon/trial4-less-regularised.toml "
        "docs/results/horizon/trial4-more-regularised.toml --epochs 20 "
        "--json docs/results/horizon-20ep.json",
        _horizon,
    ),
    "suite-times": Region(
        "docs/results/suite-times.json",
        "python tools/suite_times.py --json docs/results/suite-times.json",
        suite_times.markdown,
    ),
    "reliability": Region(
        "docs/results/reliability/reliability.json",
        "python tools/reliability_table.py --out docs/results/reliability",
        reliability_table.markdown,
        since="2417401",
    ),
}


class FiguresError(Exception):
    """A doc or a result file the tool cannot read: one line, exit 2."""


def _without(args: list[str], flags: tuple[str, ...]) -> list[str]:
    """``args`` less each of ``flags`` with its value (`--methods X` of a continuation, say,
    in the written command line and in the region's own)."""
    args = list(args)
    for flag in flags:
        while flag in args:
            at = args.index(flag)
            del args[at : at + 2]
    return args


def check_argv(region: Region, data: dict[str, Any]) -> None:
    """A result file that records its command line (``argv``) was written by the region's
    command: the same arguments after the same program."""
    argv = data.get("argv")
    if not isinstance(argv, list) or not argv:
        return
    tokens = _without(shlex.split(region.command), region.continued_by)
    program = Path(argv[0]).name
    starts = [i for i, t in enumerate(tokens) if Path(t).name == program]
    args = _without(argv[1:], region.continued_by)
    if not any(tokens[i + 1 :] == args for i in starts):
        raise FiguresError(
            f"{region.result} was written by `{shlex.join([program, *argv[1:]])}`, not by "
            f"`{region.command}`: rerun the region's command, or change it in REGIONS"
        )


def docs(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def render(name: str, region: Region, *, root: Path, inline: bool) -> str:
    """What the region between the markers should hold."""
    path = root / region.result
    if not path.exists():
        if region.since:
            text = f"Not rerun since {region.since}; run `{region.command}` to regenerate."
        else:  # a table still to be measured
            text = f"Not run yet; run `{region.command}` to measure it."
        return text if inline else f"\n{text}\n"
    if region.render is None:
        raise FiguresError(
            f"{region.result} exists but region {name!r} has no template: add one to "
            "REGIONS in tools/docs_figures.py"
        )
    try:
        data = json.loads(path.read_text())
        check_argv(region, data)
        body = region.render(data)
        commit = _commit(data)
    except (ValueError, KeyError, TypeError) as e:
        raise FiguresError(
            f"{region.result} is not what `{region.command}` writes ({type(e).__name__}: {e}); "
            "rerun the command"
        ) from None
    if inline:
        return f"{body} (`{region.command}`, commit {commit})"
    source = f"Printed from `{region.result}`, written by `{region.command}` on commit {commit}."
    return f"\n{body}\n\n{source}\n"


def check_markers(rel: str, text: str) -> None:
    """Every opening marker names a region and is closed before the next one opens."""
    opened = [(m.start(), m.group(1)) for m in OPEN.finditer(text)]
    closed = [m.start() for m in re.finditer(re.escape(CLOSE), text)]
    for i, (start, name) in enumerate(opened):
        if name not in REGIONS:
            raise FiguresError(
                f"{rel}: unknown figures region {name!r}; known: {', '.join(REGIONS)}"
            )
        end = opened[i + 1][0] if i + 1 < len(opened) else len(text)
        if not any(start < c < end for c in closed):
            raise FiguresError(f"{rel}: region {name!r} has no {CLOSE} before the next region")
    if len(closed) != len(opened):
        raise FiguresError(f"{rel}: {len(closed)} {CLOSE} markers for {len(opened)} regions")


def regenerate(root: Path, *, write: bool) -> tuple[list[str], list[str]]:
    """Render every region of every doc and write the docs (or not); return one line per
    region whose text differed, and one per region that no doc shows."""
    differences, shown = [], set()
    for doc in docs(root):
        if not doc.exists():
            continue
        rel = str(doc.relative_to(root))
        text = doc.read_text()
        check_markers(rel, text)

        def replace(m: re.Match[str], rel: str = rel) -> str:
            name, old = m.group(1), m.group(2)
            region = REGIONS[name]
            shown.add(name)
            new = render(name, region, root=root, inline=not old.startswith("\n"))
            if new != old:
                source = (
                    f"what {region.result} renders"
                    if (root / region.result).exists()
                    else f"its rerun note ({region.result} is absent)"
                )
                differences.append(f"{rel}: region {name!r} differs from {source}")
            return f"<!-- figures: {name} -->{new}{CLOSE}"

        new_text = MARK.sub(replace, text)
        if write and new_text != text:
            doc.write_text(new_text)
    unshown = [
        f"region {name!r} ({REGIONS[name].result}) is shown in no doc: put its markers in one "
        "or drop it from REGIONS"
        for name in REGIONS
        if name not in shown
    ]
    return differences, unshown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; fail if any region differs"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this)")
    args = parser.parse_args(argv)
    try:
        differences, unshown = regenerate(args.root, write=not args.check)
    except FiguresError as e:
        print(f"docs_figures: {e}", file=sys.stderr)
        return 2
    for line in unshown:
        print(f"docs_figures: {line}", file=sys.stderr)
    if args.check:
        for line in differences:
            print(f"docs_figures: {line}; run python tools/docs_figures.py", file=sys.stderr)
        return 1 if differences or unshown else 0
    print(f"docs_figures: {len(differences)} region(s) rewritten")
    return 1 if unshown else 0


if __name__ == "__main__":
    sys.exit(main())
