"""`fmnist-bench run` on a tiny network and a tiny study: every part runs on the CPU and
writes its figures; the GPU parts skip with a message, and their code runs on the CPU. Its
options come from one typed class, and every bad one is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist.config import RunConfig, dump_toml
from fmnist_bench.cli import build_parser
from fmnist_bench.options import BenchOptions
from search.options import argv, from_args

PARTS = "throughput,overhead,search,memory,gpu"


@pytest.mark.slow
def test_cpu_run_writes_every_part(
    bench, tmp_path: Path, tiny_config: RunConfig, tiny_study: Path, data_dir: Path
) -> None:
    net = tmp_path / "tiny-net.toml"
    net.write_text(dump_toml(tiny_config))
    out = tmp_path / "bench.json"
    result = bench(
        "run", "--parts", PARTS, "--run-configs", net, "--images", 384, "--epochs", 2,
        "--repeats", 1, "--study", tiny_study, "--memory-trials", 1, "--json", out,
        "--data-dir", data_dir, "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "x 2020" in result.out and "targets" in result.out
    assert "GPU: skipped" in result.out

    figures = json.loads(out.read_text())
    assert {"machine", "options", "argv", "seconds", "targets"} <= figures.keys()
    # The options as the parts ran them: the flags given, the CPU's defaults filled in.
    assert figures["options"]["parts"] == PARTS.split(",")
    assert (figures["options"]["images"], figures["options"]["repeats"]) == (384, 1)
    assert figures["options"]["packs"] == [1, 2, 4, 8]
    assert figures["machine"]["cores"] >= 1 and "cpu_bf16" in figures["machine"]

    speed = figures["throughput"][str(net)]
    for key in ("report", "ours_batch64", "ours_defaults"):
        assert speed[key]["images_per_s"] > 0
        assert len(speed[key]["epoch_seconds"]) == 2
        assert speed[key]["images_per_epoch"] == 384  # the images asked for, not all 60k
    assert speed["report"]["precision"] == "32-true" and speed["report"]["batch_size"] == 64
    assert speed["ours_batch64"]["batch_size"] == 64
    assert speed["ours_defaults"]["batch_size"] == 128
    assert speed["ratio_defaults"] == pytest.approx(
        speed["ours_defaults"]["images_per_s"] / speed["report"]["images_per_s"]
    )

    pruned, unpruned = figures["search"]["pruned"], figures["search"]["unpruned"]
    assert (pruned["pruner"], unpruned["pruner"]) == ("median", "none")
    for run in (pruned, unpruned):
        assert run["trials"] == 2 and run["wall_seconds"] > 0
        assert 0 < run["epochs_trained"] <= run["epochs_unpruned"] == 4
        assert 0 < run["best_val_acc"] <= 1
        for trial in run["per_trial"]:
            assert 0 < trial["step_seconds"] < trial["wall_seconds"]
    overhead = figures["overhead"]["pruned"]
    assert overhead["trials"] == 2 and overhead["median_seconds"] > 0

    memory = figures["memory"]
    assert memory["exit_code"] == 0 and 100 * 2**20 < memory["peak_rss_bytes"] < 8 * 2**30

    assert "skipped" in figures["gpu"]
    assert {t["target"].split(":")[0] for t in figures["targets"]} >= {str(net)}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("run", "--parts", "throughput,warp"), "unknown bench part(s) warp; known: throughput"),
        (("run", "--images", "abc"), "--images: invalid int value: 'abc'"),
        (("run", "--images", 0), "--images 0: must be at least 1"),
        (("run", "--packs", "1,x"), "--packs: '1,x': give comma-separated int values"),
        (("run", "--peer-seconds", "nan"), "--peer-seconds nan: must be above 0"),
        (("run", "--precision", "fp8"), "invalid choice: 'fp8'"),
        (("run", "--parts", ","), "--parts is empty"),
        ((), "the following arguments are required: COMMAND"),
        (("gpu-check", "--budget", "huge"), "argument --budget: invalid choice: 'huge'"),
    ],
)
def test_a_bad_option_is_one_line(bench, args: tuple, says: str) -> None:
    result = bench(*args)
    assert result.code == 2 and says in result.error, result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_the_library_cli_has_no_bench(cli) -> None:
    result = cli("bench", "--parts", "throughput")
    assert result.code == 2 and "bench" in result.err


def test_flags_give_the_typed_options_and_back() -> None:
    given = ["--presets", "vgg", "--report-workers", "2", "--packs", "1,2", "--peer-seconds", "30"]
    opts = from_args(BenchOptions, build_parser().parse_args(["run", *given]))
    assert opts.run_configs == ("vgg",) and opts.pipeline2020_workers == 2  # first flag names
    assert opts.packs == (1, 2) and opts.peer_seconds == 30.0
    assert opts.study == BenchOptions().study  # a flag not given keeps the class's default
    again = from_args(BenchOptions, build_parser().parse_args(["run", *argv(opts)]))
    assert again == opts


def test_device_defaults_are_filled_once_the_device_is_known() -> None:
    cpu, gpu = BenchOptions().for_device(on_gpu=False), BenchOptions().for_device(on_gpu=True)
    assert (cpu.images, cpu.epochs, cpu.repeats) == (2048, 3, 2)
    assert (gpu.images, gpu.epochs, gpu.repeats) == (60_000, 2, 1)
    asked = BenchOptions(images=100, epochs=5, repeats=4).for_device(on_gpu=True)
    assert (asked.images, asked.epochs, asked.repeats) == (100, 5, 4)
