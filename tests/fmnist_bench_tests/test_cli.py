"""`fmnist-search bench` on a tiny network and a tiny study: every part runs on the CPU and
writes its figures; the GPU parts skip with a message, and their code runs on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist.config import RunConfig, dump_toml

PARTS = "throughput,overhead,search,memory,gpu"


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


def test_unknown_part_is_a_user_error(cli) -> None:
    result = cli("bench", "--parts", "throughput,warp")
    assert result.code == 2
    assert "warp" in result.error and "throughput" in result.error


def test_first_flag_names_still_work() -> None:
    from search.cli import build_parser

    args = build_parser().parse_args(["bench", "--presets", "vgg", "--report-workers", "2"])
    assert args.run_configs == ("vgg",) and args.pipeline2020_workers == 2
