"""Ours against what a user would do instead with the same wall time, everything the user
waits for counted (Issue 20): each method gets the whole budget, its final training included,
and its chosen model is scored once on the test set.

- ``ours``: ``fmnist-search auto`` on the study.
- ``recipe``: the preset's best known recipe (its first baseline), no search, trained on all
  training images for the epochs the budget buys, re-planned as its epochs are timed.
- ``random``: the same pipeline with random sampling (same pruner, same split rule).
- ``one-epoch top-K``: every sampled config trained one epoch, the top K trained to the
  study's epochs, the best of those trained on all images with the rest (Egele et al. 2023,
  "Is One Epoch All You Need For Multi-Fidelity Hyperparameter Optimization?").
- ``optuna recipe``: Optuna's Lightning example (``fmnist_bench.optuna_recipe``) searching for
  the budget; its selected model is the best trial's as it trained it (it has no final step).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import statistics
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import tomli_w

from fmnist.config import full_train_config, replace, stretch
from fmnist.deadline import Deadline
from fmnist.provenance import git_commit
from fmnist.record import train_run
from fmnist.train import cpu_flags
from fmnist_bench import optuna_recipe
from fmnist_bench.bench import cut_short, show
from fmnist_bench.machine import cpu_model
from fmnist_bench.options import BaselinesOptions
from fmnist_bench.trainer import throughput
from search.auto.options import AutoOptions
from search.auto.pipeline import auto, card_reserve, extra_seeds
from search.auto.plan import Split
from search.auto.probe import TRAIN_IMAGES, recipe_config, search_epoch_seconds
from search.errors import SearchError
from search.results.anytime import Curve, anytime_curve, draw_anytime
from search.storage import load_study
from search.study import resolve
from search.study.preset import preset_path

COLUMNS = ("method", "wall_s", "trials", "val_acc", "test_acc", "test_seeds", "params",
           "host_epoch_s")  # fmt: skip
# Each method's label in the table, by its name in ``--methods`` (``BASELINE_METHODS``).
LABELS = {
    "ours": "ours (auto)",
    "recipe": "recipe, whole budget",
    "random": "random search",
    "one-epoch": "one-epoch top-K",
    "optuna": "optuna recipe",
}
# The one-epoch baseline's shares: one-epoch trials, the top K to the end, the final training.
TOP_K_SPLIT = Split(0.40, 0.25, 0.35, 0, "one-epoch top-K: fixed shares")


def labels(opts: BaselinesOptions) -> dict[str, str]:
    """Every method's label in the table, by its name."""
    return LABELS | {"one-epoch": f"one-epoch top-{opts.top_k}"}


def variant(study: str, work: Path, name: str, **changes: Any) -> Path:
    """The preset ``study`` with ``changes`` to its top-level tables, as ``work/name.toml``."""
    data = tomllib.loads(preset_path(study).read_text()) | changes
    path = work / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


class Methods:
    """Every method, run for one budget on one device; each returns a row of ``COLUMNS`` and
    its anytime curve."""

    def __init__(self, opts: BaselinesOptions, device: str, work: Path) -> None:
        self.opts, self.device, self.work = opts, device, work
        study = resolve(opts.study)  # a mistake in the preset ends the bench before any run
        self.study = study
        self.epochs = study.preset.epochs
        random = {"name": "random", "seed": study.preset.sampler.seed}
        self.random = variant(opts.study, work, f"{study.name}-random", sampler=random)
        self.one_epoch = variant(
            opts.study,
            work,
            f"{study.name}-one-epoch",
            epochs=1,
            sampler=random,
            pruner={"name": "none"},
        )

    def table(self) -> dict[str, Callable[[int], tuple[dict[str, Any], Curve]]]:
        """The methods ``--methods`` names, by their labels, in ``LABELS``' order."""
        measures = {
            "ours": lambda r: self.auto("ours", self.opts.study, r),
            "recipe": self.recipe,
            "random": lambda r: self.auto("random", str(self.random), r),
            "one-epoch": lambda r: self.auto(
                "one-epoch", str(self.one_epoch), r, split=self._top_k_split()
            ),
            "optuna": self.optuna,
        }
        label = labels(self.opts)
        return {label[m]: measures[m] for m in LABELS if m in self.opts.methods}

    def _top_k_split(self) -> Split:
        # "to the end": the top K at the study's epochs (the variant's trials train one).
        changes = {"confirm_factor": self.epochs, "confirm_max": self.opts.top_k}
        return Split(**(TOP_K_SPLIT.__dict__ | changes))

    def host(self) -> dict[str, Any]:
        """How fast this machine is now, measured before a run and outside its budget: the
        seconds of a search epoch of the preset's recipe (as ``auto``'s probe times it) and the
        CPU. A bench continued in another session may run on another machine, or on the same
        one at another speed; each run's row says which (the CPU's name and its
        ``SPEED_FLAGS``: the name alone does not tell two such machines apart)."""
        # The faster of two: a process's first training runs cold (37.4 s against auto's
        # 23.8 s a moment later, before the 60-minute table's first run).
        epoch_s = min(
            search_epoch_seconds(self.study, data_dir=self.opts.data_dir, device=self.device)
            for _ in range(2)
        )
        return {"host_epoch_s": epoch_s, "cpu": cpu_model(), "cpu_flags": cpu_flags()}

    def fresh(self, *names: str) -> None:
        """Remove what a run cut short left under these names in the work folder, so the
        run starts again from nothing (a study left there would resume its plan, and its
        wall would count only the resumed part)."""
        for path in (p for name in names for p in self.work.glob(name)):
            print(f"baselines: removing {path}, left by a run cut short", flush=True)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def auto(self, label: str, study: str, repeat: int, split: Split | None = None):
        name = f"{label}-{repeat}"
        self.fresh(f"{name}.db*", name)  # the SQLite file and its -wal and -shm
        url = f"sqlite:///{self.work}/{name}.db"
        opts = AutoOptions(
            budget_s=self.opts.budget_s,
            study=study,
            storage=url,
            study_name=name,
            seed=self.study.preset.sampler.seed + repeat,  # repeats sample afresh
            out_dir=str(self.work / name),
            final_images=self.opts.images,
            data_dir=self.opts.data_dir,
            device=self.device,
            split=split,
        )
        begin = time.perf_counter()
        result = auto(opts)
        wall = time.perf_counter() - begin
        card, stored = result["card"], load_study(name, url)
        tests = [card["test_acc"]["mean"]]
        if self.opts.seeds > 1:  # after the wall is taken: outside the budget
            more = dataclasses.replace(opts, seeds=self.opts.seeds - 1)
            extra = extra_seeds(more, self.work / name, url, card)
            tests = list(extra["per_seed"].values())
        row = {
            "wall_s": wall,
            "trials": len(stored.trials),
            "val_acc": card["search_val_acc"],
            "test_acc": tests[0],
            "test_seeds": tests,
            "params": card["params"],
        }
        return row, anytime_curve(stored)

    def recipe(self, repeat: int):
        """The recipe trained for the epochs its budget buys, with the first seed: planned
        from one whole epoch timed in its budget, then re-planned at each epoch's end to end
        by its deadline (``Deadline``). Its other seeds (an hour each at 60 minutes) come
        after, from ``more_seeds``, for the epochs the first one trained."""
        self.fresh(f"recipe-{repeat}-seed-*")  # a new run's seeds (its first: _recipe_seed)
        begin = time.monotonic()  # the clock a ``Deadline`` reads
        epoch_s = self.whole_epoch_seconds(recipe_config(self.study))
        # the reserve `auto` keeps for its scoring (2 s here ran a 15-minute recipe 5% over)
        until = begin + self.opts.budget_s - card_reserve(self.opts.budget_s)
        planned = max(1, math.floor((until - time.monotonic()) / epoch_s))
        deadline = Deadline(until)
        metrics = self._recipe_seed(repeat, planned, 0, deadline, planned_epoch_s=epoch_s)
        row = {
            "wall_s": time.monotonic() - begin,
            "trials": 0,
            "val_acc": None,  # trained on every image: nothing held out
            "test_acc": metrics["test_acc"],
            "test_seeds": [metrics["test_acc"]],
            "params": metrics["params"],
            "epochs": metrics["config"]["epochs"],  # what a continuation trains the others for
            "planned_epochs": planned,  # before the deadline re-planned them
        }
        return row, []

    def _recipe_seed(
        self, repeat: int, epochs: int, k: int, deadline: Deadline | None = None, **provenance
    ):
        """The recipe's ``k``-th seed of ``repeat`` trained for ``epochs`` (or as ``deadline``
        re-plans them) on every training image and scored once on the test set; its
        metrics."""
        final = full_train_config(
            stretch(recipe_config(self.study), epochs), subset=self.opts.images
        )
        seed = final.seed + repeat * self.opts.seeds + k  # repeats train afresh
        name = f"recipe-{repeat}" + (f"-seed-{seed}" if k else "")
        self.fresh(name)  # a seed cut short
        metrics, _ = train_run(
            replace(final, seed=seed),
            self.work / name,
            data_dir=self.opts.data_dir,
            device=self.device,
            full_train=True,
            evaluate_test=True,
            callbacks=[deadline] if deadline else [],
            provenance={"baseline": "the preset's first recipe, no search", "epochs": epochs}
            | provenance,
        )
        return metrics

    def more_seeds(self, method: str, repeat: int, row: dict[str, Any]) -> Iterator[float]:
        """The test accuracy of each seed ``row`` still lacks, trained after the budget and
        outside it, one at a time so that a bench cut short keeps each. Only the recipe's are
        trained here (an hour each at 60 minutes, so a continuation finishes them); a
        search's are trained by ``auto`` beside its study, whose lockbox records them."""
        if method != LABELS["recipe"]:
            return
        for k in range(len(row["test_seeds"]), self.opts.seeds):
            if "epochs" not in row:
                raise SearchError(
                    f"the kept recipe run (commit {row['commit']}) has {k} of "
                    f"{self.opts.seeds} seeds and no epochs to train the rest for; "
                    "rerun it: remove its row from the JSON, or give another --json"
                )
            print(f"baselines: {method}, seed {k + 1} of {self.opts.seeds}, outside the budget")
            yield self._recipe_seed(repeat, row["epochs"], k)["test_acc"]

    def whole_epoch_seconds(self, config) -> float:
        """Seconds of one epoch of ``config`` on every training image, timed whole inside the
        recipe's budget. A few timed steps (``auto``'s probe, which its search corrects with
        the epochs it measures) ran a 15-minute recipe 8% over: whole epochs are slower than
        their steps (loading, the epoch's edges), and the recipe measures nothing else."""
        images = self.opts.images or TRAIN_IMAGES
        timed = throughput(config, images=images, epochs=1, device=self.device,
                           data_dir=self.opts.data_dir)  # fmt: skip
        return timed["epoch_seconds"][0]

    def optuna(self, repeat: int):
        begin = time.perf_counter()
        done = optuna_recipe.search(
            seconds=self.opts.budget_s,
            device=self.device,
            data_dir=self.opts.data_dir,
            images=self.opts.images,
            seed=repeat,
        )
        model = done.models[done.best.number]
        test_acc = optuna_recipe.test_accuracy(model, self.opts.data_dir)
        row = {
            "wall_s": time.perf_counter() - begin,
            "trials": len(done.study.trials),
            "val_acc": done.best.value,
            "test_acc": test_acc,
            "test_seeds": None,  # no final training: its model is one trial's
            "params": sum(p.numel() for p in model.parameters()),
        }
        return row, anytime_curve(done.study)


def mean_std(values: list[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return {"mean": None, "std": None}
    return {
        "mean": statistics.fmean(known),
        "std": statistics.stdev(known) if len(known) > 1 else 0.0,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean +- std of each column over the repeats; ``test_seeds`` over every seed of every
    repeat (None where the method has no final training)."""
    stats = {  # a run continued from an earlier bench's file may lack a later column
        key: mean_std([r.get(key) for r in rows]) for key in COLUMNS[1:] if key != "test_seeds"
    }
    seeds = [acc for r in rows for acc in r["test_seeds"] or ()]
    return stats | {"test_seeds": mean_std(seeds)}


class Earlier(NamedTuple):
    """What a bench cut short left: its runs, by (method label, repeat), and the methods of
    its whole table (those its first command named, with any a continuation added)."""

    runs: dict[tuple[str, int], dict[str, Any]]
    methods: tuple[str, ...]

    def table(self, opts: BaselinesOptions) -> tuple[str, ...]:
        """The table's methods once ``opts.methods`` have run too, in ``LABELS``' order."""
        return tuple(m for m in LABELS if m in opts.methods or m in self.methods)


def earlier_runs(path: Path, opts: BaselinesOptions) -> Earlier:
    """The runs a bench of the same options finished before it was cut short, from the JSON
    it left at ``path``: the same command continues it (a 60-minute table is eight hours on
    2 cores), each kept run naming the commit it ran on. The continuation may name other
    ``--methods`` (those that fit in the time at hand): the file keeps every method's runs,
    and stays cut short until each method of its table has run; the runs of methods named in
    ``--again`` are dropped, to be measured afresh. A finished bench's file is measured again
    from the start."""
    free = frozenset({"json", "methods", "again"})
    if (data := cut_short(path, opts, "a baselines run", free=free)) is None:
        return Earlier({}, ())
    # Measured afresh: a file written since (it names them) holds them measured afresh.
    done = data["options"].get("again", ())
    b, again = data["baselines"], {labels(opts)[m] for m in opts.again if m not in done}
    runs = {
        (method, i): {"row": row, "curve": b["curves"].get(method, []) if i == 0 else []}
        for method, rows in b["runs"].items()
        if method not in again  # measured afresh
        for i, row in enumerate(rows)
    }
    return Earlier(runs, tuple(data["options"]["methods"]))


def run(
    opts: BaselinesOptions,
    device: str,
    work: Path,
    figure: Path,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    earlier: Earlier | None = None,
) -> dict[str, Any]:
    """Every method ``opts.repeats`` times, interleaved (a shared machine's drift then hits
    every method alike); the table printed, the anytime curves of the first repeat drawn to
    ``figure``; the figures under ``baselines``. ``on_run`` hears the figures so far after
    each run, so a bench cut short keeps what it measured; the runs in ``earlier``
    (``earlier_runs``) are kept, not run again, those of methods not named now included."""
    methods = Methods(opts, device, work)
    table, label = methods.table(), labels(opts)
    earlier = earlier or Earlier({}, ())
    # The kept runs are in from the start, in the table's order: a continuation cut short
    # in one method still writes the kept runs of the methods after it (one cut in the
    # recipe's seeds once wrote a file without random search's hour).
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in label.values()}
    curves: dict[str, Curve] = {}
    for (method, _), kept in sorted(earlier.runs.items(), key=lambda item: item[0][1]):
        runs.setdefault(method, []).append(kept["row"])  # a label no longer shipped: last
        curves.setdefault(method, kept["curve"])

    def so_far(partial: bool = True) -> dict[str, Any]:
        done = {method: rows for method, rows in runs.items() if rows}
        drawn = {method: curves[method] for method in done if method in curves}
        return figures(opts, done, drawn, figure, partial=partial)

    for repeat in range(opts.repeats):
        for method in label.values():
            where = f"baselines: {method}, repeat {repeat + 1} of {opts.repeats}"
            if (kept := earlier.runs.get((method, repeat))) is not None:
                row = kept["row"]
                print(f"\n{where}: kept from the run cut short (commit {row['commit']})")
            elif (measure := table.get(method)) is None:
                continue  # neither named now nor kept
            else:
                print(f"\n{where}", flush=True)
                host = methods.host()
                row, curve = measure(repeat)
                row = {"method": method, **row, **host, "commit": git_commit()}
                runs[method].append(row)
                curves.setdefault(method, curve)
                if on_run:
                    on_run(so_far())
            for test in methods.more_seeds(method, repeat, row) if method in table else ():
                row["test_seeds"].append(test)
                if on_run:
                    on_run(so_far())
    short = [m for m in earlier.table(opts) if unfinished(runs[label[m]], opts)]
    result = so_far(partial=bool(short))
    if short:
        print(
            "baselines: the table still lacks runs or seeds of "
            f"{', '.join(label[m] for m in short)}: the same command continues it "
            f"(--methods {','.join(short)} runs only those)"
        )
    summary = result["baselines"]["summary"]
    show(
        f"baselines: {opts.budget_s:g} s each, final training included; test scored once per "
        f"run; mean +- std over {opts.repeats} repeat(s); test, {opts.seeds} seed(s): the "
        "final training's seeds, the first in the budget and the others after it",
        [
            "method",
            "wall s",
            "trials",
            "validation",
            "test",
            f"test, {opts.seeds} seed(s)",
            "parameters",
            "host epoch s",
        ],  # fmt: skip
        [[method, *(_cell(summary[method][k]) for k in COLUMNS[1:])] for method in summary],
    )
    title = f"best validation accuracy against wall time, {opts.budget_s:g} s each"
    draw_anytime(result["baselines"]["curves"], figure, title)  # in the table's order
    print(f"anytime curves: {figure}")
    return result


def unfinished(rows: list[dict[str, Any]], opts: BaselinesOptions) -> bool:
    """Whether a method lacks a repeat, or a seed of its final training (the recipe's are
    written one by one)."""
    seeds = [len(r["test_seeds"]) for r in rows if r["test_seeds"] is not None]
    return len(rows) < opts.repeats or any(n < opts.seeds for n in seeds)


def figures(
    opts: BaselinesOptions,
    runs: dict[str, list[dict[str, Any]]],
    curves: dict[str, Curve],
    figure: Path,
    partial: bool = False,
) -> dict[str, Any]:
    """What the JSON holds: every run's row, the summary, the curves, and whether runs are
    to come (``partial``)."""
    return {
        "baselines": {
            "budget_s": opts.budget_s,
            "repeats": opts.repeats,
            "seeds": opts.seeds,
            "columns": list(COLUMNS),
            "runs": runs,
            "summary": {method: summarise(rows) for method, rows in runs.items()},
            "curves": curves,
            "figure": str(figure),
        },
        "partial": partial,
    }


def _cell(stat: dict[str, float | None]) -> str:
    if stat["mean"] is None:
        return "-"
    if stat["std"]:
        return f"{stat['mean']:.4g} +- {stat['std']:.2g}"
    return f"{stat['mean']:.4g}"
