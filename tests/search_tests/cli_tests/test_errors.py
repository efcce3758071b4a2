"""Every mistake a user can fix ends as one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import torch

from search.study import names

DEAD_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def test_bad_preset_is_one_line_naming_the_key(cli, bad_preset: tuple[Path, str]) -> None:
    path, key = bad_preset
    result = cli("run", "--study", path, "--storage", "sqlite:///s.db")
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("fmnist-search: error: ")
    assert key in result.err and str(path) in result.err
    assert not Path("s.db").exists()  # checked before any storage is touched


@pytest.mark.slow  # a process per command; the in-process table covers the same errors
def test_bad_preset_as_a_process(tmp_path: Path, tiny_preset, command) -> None:
    path = tiny_preset(tmp_path / "bad.toml", epochz=3)
    done = subprocess.run(
        command("run", "--study", path), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"fmnist-search: error: {path}: unknown key 'epochz'; expected one of")
    assert done.stdout == ""


def test_unknown_study_lists_the_presets(cli) -> None:
    result = cli("run", "--study", "resnett")
    assert result.code == 2
    assert "'resnett'" in result.error
    assert f"presets: {', '.join(names())}" in result.error


def test_unreachable_storage_names_the_url_fast(tmp_path: Path, command) -> None:
    start = time.perf_counter()
    done = subprocess.run(
        command("run", "--study", "quick", "--storage", DEAD_POSTGRES),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.perf_counter() - start < 30
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"fmnist-search: error: cannot open storage {DEAD_POSTGRES}")
    assert "check that the server is running" in line
    assert not list(tmp_path.iterdir())  # no runs/ folder, no default SQLite file


@pytest.mark.parametrize(
    "args",
    [
        ["studies"],
        ["show", "--study", "quick"],
        ["export", "--study", "quick"],
        ["dashboard", "--port", "1"],
    ],
    ids=lambda args: args[0],
)
@pytest.mark.parametrize(
    "url",
    [DEAD_POSTGRES, "mysql+pymysql://nobody@127.0.0.1:1/none", "redis://127.0.0.1:1/0"],
    ids=["postgres", "mysql", "redis"],
)
def test_every_command_says_which_storage_is_unreachable(cli, args: list[str], url: str) -> None:
    result = cli(*args, "--storage", url)
    assert result.code == 2
    assert f"cannot open storage {url}" in result.error


def test_the_password_never_reaches_the_console(cli) -> None:
    result = cli("studies", "--storage", "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/none")
    assert result.code == 2
    assert "hunter2" not in result.err + result.out
    assert "nobody:***@127.0.0.1" in result.error


def test_unknown_study_in_a_storage_lists_what_is_there(cli, tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="mine", storage=url)
    result = cli("show", "--study", "yours", "--storage", url)
    assert result.code == 2
    assert "no study 'yours'" in result.error and "studies there: mine" in result.error


def test_missing_data_folder_is_named(cli, tmp_path: Path) -> None:
    result = cli(
        "run", "--study", "quick", "--storage", "sqlite:///s.db", "--data-dir", tmp_path / "no"
    )
    assert result.code == 2
    assert f"no Fashion-MNIST train files in {tmp_path / 'no'}" in result.error


def test_missing_config_file_is_named(cli) -> None:
    for args in (["retrain", "best.toml"], ["train", "--config", "best.toml"]):
        result = cli(*args)
        assert result.code == 2
        assert "best.toml does not exist" in result.error


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_one_is_a_user_error(cli) -> None:
    result = cli("run", "--study", "quick", "--device", "cuda", "--storage", "sqlite:///s.db")
    assert result.code == 2
    assert "--device cpu" in result.error
