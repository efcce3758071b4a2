from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist.config import RunConfig, dump_toml, from_dict, replace
from search.cli import main

METRICS_FIELDS = {
    "val_acc",
    "test_acc",
    "params",
    "macs",
    "epoch_seconds",
    "config",
    "split_fingerprint",
    "packages",
    "git_commit",
    "lockbox_openings",
    "train_images",
    "seed",
}


@pytest.fixture
def small_toml(tmp_path: Path, tiny_config: RunConfig) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(dump_toml(replace(tiny_config, epochs=3, **{"data.subset": 0})))
    return path


def train_args(config: Path | str, out: Path, data_dir: Path) -> list[str]:
    return [
        "train",
        "--config",
        str(config),
        "--epochs",
        "1",
        "--subset",
        "1000",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--device",
        "cpu",
    ]


def check_run(out: Path, stdout: str, tiny_config: RunConfig) -> None:
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRICS_FIELDS <= set(metrics)
    assert f"validation accuracy {metrics['val_acc']:.4f}" in stdout
    assert metrics["split_fingerprint"] in stdout
    # The flags override the file, and the file's other values stand.
    assert from_dict(RunConfig, metrics["config"]) == tiny_config
    assert metrics["test_acc"] is None and metrics["lockbox_openings"] == 0
    assert metrics["train_images"] == 1000 and len(metrics["epoch_seconds"]) == 1
    assert (out / "model.ckpt").is_file() and (out / "config.toml").is_file()


@pytest.mark.slow  # trains for more than a few seconds
def test_train_in_process(
    small_toml: Path,
    tiny_config: RunConfig,
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    assert main(train_args(small_toml, out, data_dir)) == 0
    check_run(out, capsys.readouterr().out, tiny_config)


@pytest.mark.slow  # trains for more than a few seconds
def test_train_console_script(
    small_toml: Path, tiny_config: RunConfig, data_dir: Path, tmp_path: Path
) -> None:
    """What a user runs: the installed ``fmnist-search`` script, in a process of its own."""
    script = Path(sys.executable).parent / "fmnist-search"
    assert script.is_file(), "install the package: pip install -e '.[test]'"
    out = tmp_path / "run"
    done = subprocess.run(
        [str(script), *train_args(small_toml, out, data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    check_run(out, done.stdout, tiny_config)


def one_error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fmnist-search: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[model]\nfamily = "resnet"\nwidthz = [8, 16]\n', "'model.widthz'"),  # unknown key
        ('[optim]\nlr = "fast"\n', "optim.lr"),  # wrong type
        ('[model]\nfamily = "resnet"\nwidths = [8, 16]\nblocks = [1]\n', "one entry per stage"),
    ],
    ids=["unknown-key", "wrong-type", "inconsistent"],
)
def test_bad_config_file(
    text: str, named: str, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    line = one_error_line(train_args(bad, tmp_path / "run", data_dir), capsys)
    assert str(bad) in line and named in line


def test_unknown_config_name(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_error_line(train_args("resnett", tmp_path / "run", data_dir), capsys)
    assert "'resnett'" in line and "mobilenet, resnet, vgg" in line


def test_missing_config_file(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = tmp_path / "absent.toml"
    line = one_error_line(train_args(absent, tmp_path / "run", data_dir), capsys)
    assert str(absent) in line and "does not exist" in line


def test_missing_data(small_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    line = one_error_line(train_args(small_toml, tmp_path / "run", empty), capsys)
    assert str(empty) in line and "dataset-fashion-mnist" in line


def test_subset_too_large(
    small_toml: Path, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = train_args(small_toml, tmp_path / "run", data_dir)
    argv[argv.index("--subset") + 1] = "100000"
    line = one_error_line(argv, capsys)
    assert "data.subset" in line


def test_config_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train"])
    assert exit_.value.code == 2
    assert "--config" in capsys.readouterr().err


@pytest.mark.slow  # trains twice
def test_full_train_with_an_explicit_subset(
    small_toml: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--full-train --subset N` trains on N images, none held out, and saves that config."""
    out = tmp_path / "run"
    assert main([*train_args(small_toml, out, data_dir), "--full-train"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_images"] == 1000 and metrics["val_acc"] is None
    assert metrics["split_fingerprint"] == "no validation split"
    saved = from_dict(RunConfig, metrics["config"])
    assert (saved.data.val_size, saved.data.subset) == (0, 1000)
    assert "params" in capsys.readouterr().out


@pytest.mark.slow  # trains one tiny epoch
def test_a_config_chosen_on_another_split_is_warned_about(
    tmp_path: Path, tiny_config: RunConfig, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "exported.toml"
    path.write_text(dump_toml(tiny_config, {"split_fingerprint": "0123456789abcdef"}))
    code = main(train_args(path, tmp_path / "out", data_dir))
    assert code == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "0123456789abcdef" in warnings[0]

    path.write_text(dump_toml(tiny_config, {"split_fingerprint": "no validation split"}))
    main([*train_args(path, tmp_path / "full", data_dir), "--full-train", "--subset", "200"])
    assert "warning:" not in capsys.readouterr().err  # no split, nothing to compare
