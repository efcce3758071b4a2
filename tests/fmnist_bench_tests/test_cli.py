"""`fmnist-search bench` on a tiny network and a tiny study: every part runs on the CPU and
writes its figures; the GPU parts skip with a message, and their code runs on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist.config import RunConfig, dump_toml
from fmnist_bench.parts import gpu
from fmnist_bench.targets import targets

PARTS = "throughput,overhead,search,memory,gpu"


@pytest.fixture
def tiny_study(tmp_path: Path, tiny_preset) -> Path:
    return tiny_preset(
        tmp_path / "tiny.toml",
        n_trials=2,
        subset=256,
        val_size=200,
        pruner={"name": "median", "options": {"n_startup_trials": 1}},
    )


@pytest.mark.slow
def test_cpu_run_writes_every_part(
    cli, tmp_path: Path, tiny_config: RunConfig, tiny_study: Path, data_dir: Path
) -> None:
    net = tmp_path / "tiny-net.toml"
    net.write_text(dump_toml(tiny_config))
    out = tmp_path / "bench.json"
    result = cli(
        "bench", "--parts", PARTS, "--run-configs", net, "--images", 384, "--epochs", 2,
        "--repeats", 1, "--study", tiny_study, "--memory-trials", 1, "--json", out,
        "--data-dir", data_dir, "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "x 2020" in result.out and "targets" in result.out
    assert "GPU: skipped" in result.out

    figures = json.loads(out.read_text())
    assert {"machine", "options", "argv", "seconds", "targets"} <= figures.keys()
    assert figures["machine"]["cores"] >= 1 and "cpu_bf16" in figures["machine"]

    speed = figures["throughput"][str(net)]
    for key in ("report", "ours_batch64", "ours_defaults"):
        assert speed[key]["images_per_s"] > 0
        assert len(speed[key]["epoch_seconds"]) == 2
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


def test_gpu_fast_path_code_runs_on_cpu(tiny_config: RunConfig, data_dir: Path) -> None:
    row = gpu.fast_pace(
        tiny_config, compile=False, images=512, epochs=2, device="cpu", data_dir=data_dir, peak=1e12
    )
    assert row["precision"] == "bf16-mixed" and row["channels_last"]
    assert row["seconds_per_60k"] == pytest.approx(60_000 / row["images_per_s"])
    assert 0 < row["of_peak"] < 1


@pytest.mark.slow
def test_packed_trials_code_runs_on_cpu(tiny_study: Path, data_dir: Path, tmp_path: Path) -> None:
    one = gpu.packed(
        str(tiny_study), 1, seconds=0.1, device="cpu", data_dir=str(data_dir), work=tmp_path
    )
    assert one["workers"] == 1 and one["trials"] >= 1 and one["trials_per_hour"] > 0


def test_targets_judge_the_figures() -> None:
    results = {
        "throughput": {"vgg": {"ratio_defaults": 2.5}, "resnet": {"ratio_defaults": 1.5}},
        "memory": {"peak_rss_bytes": 4 * 2**30},
        "gpu": {
            "packed": [{"workers": 1, "trials_per_hour": 10}, {"workers": 4, "trials_per_hour": 30}]
        },
    }
    verdicts = {t["target"].split(":")[0]: t["holds"] for t in targets(results, False)}
    assert verdicts["vgg"] and not verdicts["resnet"]
    assert not verdicts["worker peak RSS <= 3 GiB on CPU"]
    assert verdicts["4 packed trials >= 2.5x the trials/hour of one"]


def test_unknown_part_is_a_user_error(cli) -> None:
    result = cli("bench", "--parts", "throughput,warp")
    assert result.code == 2
    assert "warp" in result.error and "throughput" in result.error


def test_first_flag_names_still_work() -> None:
    from search.cli import build_parser

    args = build_parser().parse_args(["bench", "--presets", "vgg", "--report-workers", "2"])
    assert args.run_configs == ("vgg",) and args.pipeline2020_workers == 2
