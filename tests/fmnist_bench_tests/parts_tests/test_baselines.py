"""`fmnist-bench baselines` on a budget of seconds: every method runs once, is scored once on
the test set (its final training's extra seeds after its wall is taken), and the JSON holds
every column of every method; ``--methods`` runs only those named; bad options are one line."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fmnist.config import load_toml
from search.study import lockbox
from tests.testing import AUTO_IN_TESTS, load, write_preset
from tools import docs_figures

METHODS = {"ours (auto)", "recipe, whole budget", "random search", "one-epoch top-2",
           "optuna recipe"}  # fmt: skip
SEARCHES = {"ours": "ours-0", "random search": "random-0", "one-epoch": "one-epoch-0"}


def short_bench(tmp_path: Path, data_dir: Path, *options: object):
    """argv of a bench of 4-second methods on a tiny preset and 2,000 images; its JSON and
    work folder."""
    preset = write_preset(tmp_path / "tinyb.toml", **AUTO_IN_TESTS)
    out, work = tmp_path / "b.json", tmp_path / "work"
    argv = ("baselines", "--budget", "4s", "--study", preset, "--images", 2000, "--json", out,
            "--work-dir", work, "--data-dir", data_dir, "--device", "cpu", *options)  # fmt: skip
    return argv, out, work


def ctrl_c_at(call: int, function: Callable) -> Callable:
    """``function``, with Ctrl-C in place of its ``call``-th call."""
    calls = itertools.count(1)

    def cut(*args, **kwargs):
        if next(calls) == call:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return cut


@pytest.mark.slow
def test_every_method_is_scored_once_and_written(bench, tmp_path: Path, data_dir: Path) -> None:
    preset = write_preset(tmp_path / "tinyb.toml", **AUTO_IN_TESTS)
    out, work = tmp_path / "b.json", tmp_path / "work"
    result = bench(
        "baselines", "--budget", "8s", "--study", preset, "--top-k", 2, "--images", 2000,
        "--seeds", 2, "--json", out, "--work-dir", work, "--data-dir", data_dir, "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.log
    figures = json.loads(out.read_text())
    found = figures["baselines"]
    assert set(found["runs"]) == METHODS
    for method, runs in found["runs"].items():
        assert len(runs) == 1, method
        # the recipe's epochs as trained (what a continuation trains its other seeds for)
        # and as first planned
        extra = {"epochs", "planned_epochs"} if method == "recipe, whole budget" else set()
        assert set(runs[0]) == set(found["columns"]) | {"commit", "cpu", "cpu_flags"} | extra
        assert 0.0 <= runs[0]["test_acc"] <= 1.0 and runs[0]["params"] > 0
        assert runs[0]["wall_s"] > 0
        # the machine's speed just before the run, outside its budget (its wall excludes it)
        assert 0 < runs[0]["host_epoch_s"] and runs[0]["cpu"] == figures["machine"]["cpu"]
        assert runs[0]["cpu_flags"] == figures["machine"]["cpu_flags"]
        seeds = runs[0]["test_seeds"]
        if method == "optuna recipe":  # no final training: its model is one trial's
            assert seeds is None
        else:  # the in-budget seed first, then one more, each scored once
            assert len(seeds) == 2 and seeds[0] == runs[0]["test_acc"], method
    assert found["runs"]["recipe, whole budget"][0]["val_acc"] is None  # nothing held out
    assert (work / "recipe-0-seed-1" / "metrics.json").is_file()
    for name in ("ours-0", "random-0", "one-epoch-0"):
        assert (work / name / "extra-seeds" / "model_card.json").is_file(), name
    for name in SEARCHES.values():  # each search's winner: one opening a seed, on its study
        assert len(lockbox.openings(load(f"sqlite:///{work}/{name}.db", name))) == 2
    assert Path(found["figure"]).read_bytes()[:4] == b"\x89PNG"
    assert {"machine", "options", "argv", "seconds"} <= figures.keys()
    for method in METHODS:
        assert method in result.out  # the table
    # RESULTS.md's table, from this JSON: a row per method with its test accuracy.
    table = docs_figures._baselines(figures)
    line = docs_figures._baselines_line(figures)  # README's headline
    assert "test, 2 seeds |" in table and "| host epoch s |" in table
    for method, stat in found["summary"].items():
        assert f"| {method} |" in table and f"{stat['test_acc']['mean']:.4f}" in table
        if method != "optuna recipe":
            seeds = found["runs"][method][0]["test_seeds"]
            assert stat["test_seeds"]["mean"] == pytest.approx(sum(seeds) / 2)
        # with --seeds 2, the headline gives the mean over the final training's seeds (Optuna's
        # recipe, which has none, its one test)
        seeded = stat["test_seeds"]["mean"]
        assert f"{method} {100 * (seeded or stat['test_acc']['mean']):.2f}" in line


@pytest.mark.slow
def test_methods_runs_only_those_named(bench, tmp_path: Path, data_dir: Path) -> None:
    preset = write_preset(tmp_path / "tinyb.toml", **AUTO_IN_TESTS)
    out, work = tmp_path / "b.json", tmp_path / "work"
    result = bench(
        "baselines", "--budget", "4s", "--study", preset, "--methods", "recipe",
        "--repeats", 2, "--images", 2000, "--json", out, "--work-dir", work, "--data-dir", data_dir,
        "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.log
    found = json.loads(out.read_text())["baselines"]
    assert list(found["runs"]) == ["recipe, whole budget"]
    for run in found["runs"]["recipe, whole budget"]:
        assert run["test_seeds"] == [run["test_acc"]]
    assert sorted(p.name for p in work.iterdir()) == ["recipe-0", "recipe-1",
                                                       "tinyb-one-epoch.toml",
                                                       "tinyb-random.toml"]  # fmt: skip
    # each repeat trains afresh: its own seed
    seeds = [load_toml(work / f"recipe-{r}" / "config.toml")[0].seed for r in (0, 1)]
    assert seeds[1] == seeds[0] + 1
    for r, run in enumerate(found["runs"]["recipe, whole budget"]):
        # planned from one whole epoch timed in its budget, then re-planned to its deadline;
        # its files and row say which epochs it planned and which it trained
        metrics = json.loads((work / f"recipe-{r}" / "metrics.json").read_text())
        assert metrics["provenance"]["planned_epoch_s"] > 0
        assert metrics["provenance"]["epochs"] == run["planned_epochs"] >= 1
        assert len(metrics["epoch_seconds"]) == metrics["config"]["epochs"] == run["epochs"] >= 1


@pytest.mark.slow
def test_a_bench_cut_short_is_continued_by_its_command(
    bench, tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """Ctrl-C in the second repeat's `auto`: the same command keeps the runs that finished,
    removes what the cut run left, and runs it again from nothing."""
    from search.auto import pipeline

    argv, out, work = short_bench(tmp_path, data_dir, "--methods", "ours,recipe", "--repeats", 2)
    retrain = pipeline.retrain
    # ours, repeat 2: its final training
    monkeypatch.setattr(pipeline, "retrain", ctrl_c_at(2, retrain))
    cut = bench(*argv)
    assert cut.code == 130, cut.log
    partial = json.loads(out.read_text())
    assert partial["partial"] and {m: len(r) for m, r in partial["baselines"]["runs"].items()} \
        == {"ours (auto)": 1, "recipe, whole budget": 1}  # fmt: skip
    assert (work / "ours-1.db").is_file()  # its plan stopped in the final phase

    monkeypatch.setattr(pipeline, "retrain", retrain)
    again_at = time.time()
    again = bench(*argv)
    assert again.code == 0, again.log
    assert "ours (auto), repeat 1 of 2: kept from the run cut short" in again.out
    assert "recipe, whole budget, repeat 1 of 2: kept from the run cut short" in again.out
    assert f"removing {work / 'ours-1.db'}, left by a run cut short" in again.out
    found = json.loads(out.read_text())
    assert not found["partial"]
    runs = found["baselines"]["runs"]
    assert [len(r) for r in runs.values()] == [2, 2]
    for method, rows in partial["baselines"]["runs"].items():
        assert runs[method][0] == rows[0]  # kept as measured, with its commit
    study = load(f"sqlite:///{work}/ours-1.db", "ours-1")  # run again from nothing
    assert all(t.datetime_start.timestamp() >= again_at for t in study.trials)
    assert len(lockbox.openings(study)) == 1

    found["partial"] = True  # as if cut short again; now with other options
    out.write_text(json.dumps(found))
    differ = bench(*argv, "--seeds", 2)
    assert differ.code == 2
    assert "holds a baselines run cut short with other options (seeds: 1 there, 2 here)" in (
        differ.error
    )


@pytest.mark.slow
def test_the_recipes_seeds_are_kept_one_by_one(
    bench, tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """The recipe's other seeds are each as long as its budget: each is written as it ends,
    and a continuation trains only those still missing."""
    from fmnist_bench.parts import baselines

    argv, out, work = short_bench(tmp_path, data_dir, "--methods", "recipe", "--seeds", 3)
    train = baselines.train_run
    monkeypatch.setattr(baselines, "train_run", ctrl_c_at(3, train))  # the third seed
    cut = bench(*argv)
    assert cut.code == 130, cut.log
    partial = json.loads(out.read_text())
    (row,) = partial["baselines"]["runs"]["recipe, whole budget"]
    assert partial["partial"] and len(row["test_seeds"]) == 2 and row["epochs"] >= 1
    assert row["test_seeds"][0] == row["test_acc"]

    monkeypatch.setattr(baselines, "train_run", train)
    again = bench(*argv)
    assert again.code == 0, again.log
    assert "recipe, whole budget, repeat 1 of 1: kept from the run cut short" in again.out
    assert "seed 3 of 3, outside the budget" in again.out and "seed 2 of 3" not in again.out
    found = json.loads(out.read_text())
    (done,) = found["baselines"]["runs"]["recipe, whole budget"]
    assert not found["partial"] and done == row | {"test_seeds": done["test_seeds"]}
    assert done["test_seeds"][:2] == row["test_seeds"] and len(done["test_seeds"]) == 3
    configs = [load_toml(p / "config.toml")[0] for p in sorted(work.glob("recipe-0*"))]
    assert len({c.seed for c in configs}) == 3  # each seed its own
    assert {c.epochs for c in configs} == {row["epochs"]}  # as long as the one in the budget


@pytest.mark.slow
def test_a_continuation_may_run_other_methods(bench, tmp_path: Path, data_dir: Path) -> None:
    """A long table continued in several sessions, some methods at a time: the file keeps
    every method's runs and stays cut short until each method of its table has run."""
    argv, out, _ = short_bench(tmp_path, data_dir, "--methods", "recipe")
    assert (first := bench(*argv)).code == 0, first.log
    data = json.loads(out.read_text())
    assert not data["partial"] and data["options"]["methods"] == ["recipe"]
    # As if a table of three methods had been cut short after ours, on an earlier commit.
    recipe = data["baselines"]["runs"].pop("recipe, whole budget")[0]
    ours = recipe | {"method": "ours (auto)", "trials": 5, "commit": "an-earlier-commit"}
    data["baselines"]["runs"] = {"ours (auto)": [ours]}
    data["options"]["methods"], data["partial"] = ["ours", "recipe", "random"], True
    out.write_text(json.dumps(data))

    again = bench(*argv)
    assert again.code == 0, again.log
    assert "ours (auto), repeat 1 of 1: kept from the run cut short" in again.out
    assert "the table still lacks runs or seeds of random search" in again.out
    found = json.loads(out.read_text())
    assert found["partial"] and found["options"]["methods"] == ["ours", "recipe", "random"]
    runs = found["baselines"]["runs"]
    assert list(runs) == ["ours (auto)", "recipe, whole budget"]
    assert runs["ours (auto)"] == [ours] and runs["recipe, whole budget"][0]["commit"] != (
        "an-earlier-commit"
    )
    assert "random search" not in found["baselines"]["summary"]

    # --again: the recipe's run measured afresh (ours kept); the same command, cut short
    # after it, keeps the fresh run rather than measuring it a third time.
    fresh = bench(*argv, "--again", "recipe")
    assert fresh.code == 0, fresh.log
    assert "ours (auto), repeat 1 of 1: kept" in fresh.out
    assert "recipe, whole budget, repeat 1 of 1: kept" not in fresh.out
    found = json.loads(out.read_text())
    assert found["options"]["again"] == ["recipe"]
    runs = found["baselines"]["runs"]
    assert runs["ours (auto)"] == [ours]
    assert runs["recipe, whole budget"][0]["wall_s"] != recipe["wall_s"]  # a run of its own
    same = bench(*argv, "--again", "recipe")
    assert "recipe, whole budget, repeat 1 of 1: kept" in same.out
    assert json.loads(out.read_text())["baselines"]["runs"] == runs

    # Once every method of its table has run, the file is whole (a new run starts afresh).
    found["options"]["methods"] = ["ours", "recipe"]
    out.write_text(json.dumps(found))
    last = bench(*argv)
    assert last.code == 0, last.log
    assert "recipe, whole budget, repeat 1 of 1: kept from the run cut short" in last.out
    whole = json.loads(out.read_text())
    assert not whole["partial"] and whole["baselines"]["runs"] == runs


@pytest.mark.slow
def test_a_continuation_cut_short_keeps_the_runs_after_it(
    bench, tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """Cut short in the recipe's second seed, a continuation's file still holds the kept
    run of random search, which comes after the recipe in the table."""
    from fmnist_bench.parts import baselines

    argv, out, _ = short_bench(tmp_path, data_dir, "--methods", "recipe", "--seeds", 2)
    assert (first := bench(*argv)).code == 0, first.log
    data = json.loads(out.read_text())
    recipe = data["baselines"]["runs"].pop("recipe, whole budget")[0]
    random = recipe | {"method": "random search", "trials": 7, "commit": "an-earlier-commit"}
    data["baselines"]["runs"] = {"random search": [random]}
    data["options"]["methods"], data["partial"] = ["recipe", "random"], True
    out.write_text(json.dumps(data))

    monkeypatch.setattr(baselines, "train_run", ctrl_c_at(2, baselines.train_run))
    cut = bench(*argv)
    assert cut.code == 130, cut.log
    runs = json.loads(out.read_text())["baselines"]["runs"]
    assert list(runs) == ["recipe, whole budget", "random search"]
    assert runs["random search"] == [random] and len(runs["recipe, whole budget"]) == 1


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--budget", "soon"], "--budget: 'soon'"),
        (["--budget", "15m", "--repeats", "0"], "--repeats 0"),
        (["--budget", "15m", "--top-k", "0"], "--top-k 0"),
        (["--budget", "15m", "--seeds", "0"], "--seeds 0"),
        (["--budget", "15m", "--methods", "ours,grid"], "--methods 'ours,grid': give one or"),
        (
            ["--budget", "15m", "--methods", "ours", "--again", "recipe"],
            "--again 'recipe': recipe not in --methods 'ours'",
        ),  # fmt: skip
        (["--budget", "15m", "--study", "nosuch"], "unknown study 'nosuch'"),
    ],
)
def test_bad_baselines_options_are_one_line(bench, argv: list[str], names: str) -> None:
    result = bench("baselines", *argv)
    assert result.code == 2
    assert names in result.error


def test_runs_kept_from_an_older_file_show_no_host_speed() -> None:
    """A bench continued across sessions may keep runs measured before rows named their
    machine's speed: the summary gives none for them, the table a dash, and a run on another
    CPU is named in the machine line."""
    from fmnist_bench.parts.baselines import summarise

    old = {"method": "ours (auto)", "wall_s": 60.0, "trials": 3, "val_acc": 0.9,
           "test_acc": 0.91, "test_seeds": [0.91], "params": 1000, "commit": "a" * 40}  # fmt: skip
    new = old | {"method": "random search", "host_epoch_s": 12.5, "cpu": "Other CPU"}
    summary = {"ours (auto)": summarise([old]), "random search": summarise([new])}
    assert summary["ours (auto)"]["host_epoch_s"] == {"mean": None, "std": None}
    machine = {"cpu": "AMD EPYC", "cores": 2, "cpu_busy": 0.0, "git_commit": "a" * 40}
    table = docs_figures._baselines(
        {"machine": machine, "baselines": {"budget_s": 60, "repeats": 1, "seeds": 1,
         "runs": {"ours (auto)": [old], "random search": [new]}, "summary": summary}}
    )  # fmt: skip
    assert "AMD EPYC (some runs on Other CPU), 2 cores" in table
    assert "| ours (auto) | 60 | 3 | 0.9000 | 0.9100 | 1,000 | - |" in table
    assert "| random search | 60 | 3 | 0.9000 | 0.9100 | 1,000 | 12.5 |" in table


def test_the_host_speed_is_the_faster_of_two_probes(tmp_path: Path, monkeypatch) -> None:
    """A process's first training runs cold: the row keeps the faster of two timings."""
    from fmnist_bench.options import BaselinesOptions
    from fmnist_bench.parts import baselines

    timings = iter([37.4, 23.8])
    monkeypatch.setattr(baselines, "search_epoch_seconds", lambda *a, **k: next(timings))
    preset = write_preset(tmp_path / "tinyb.toml", **AUTO_IN_TESTS)
    methods = baselines.Methods(BaselinesOptions(budget_s=4, study=str(preset)), "cpu", tmp_path)
    assert methods.host()["host_epoch_s"] == 23.8
