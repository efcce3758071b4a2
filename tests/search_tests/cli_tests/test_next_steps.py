"""A finished `run` starts with its estimate and ends with the commands that follow it,
filled in with its study and storage, and runnable exactly as printed."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from fmnist.config import load_toml
from tests.testing import CliResult, run_args, smallest

pytestmark = pytest.mark.slow


def printed(out: str) -> dict[str, list[str]]:
    """The ``next:`` lines by subcommand, as argv after the program's name."""
    lines = out[out.index("\nnext:\n") + len("\nnext:\n") :].splitlines()
    commands = [shlex.split(line, comments=True) for line in lines if line.startswith("  ")]
    assert all(argv[0] == "fmnist-search" for argv in commands)
    return {argv[1]: argv[1:] for argv in commands}


def test_run_prints_its_estimate_first_and_runnable_next_steps(
    tmp_path: Path, cli: Callable[..., CliResult], data_dir: Path, study_name: str
) -> None:
    url = f"sqlite:///{tmp_path}/next.db"
    preset = smallest(tmp_path)
    result = cli(*run_args(preset, url, study_name, tmp_path), "--n-trials", "2",
                 "--device", "cpu", "--data-dir", data_dir)  # fmt: skip
    assert result.code == 0, result.log
    lines = result.out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("estimate: one trial"))
    first_trial = next(i for i, line in enumerate(lines) if line.startswith("trial "))
    assert start == 1 < first_trial  # right after the header, before any trial
    assert "the sampler's first config on cpu" in lines[start]

    steps = printed(result.out)
    assert set(steps) == {"dashboard", "confirm", "export", "retrain"}
    for argv in steps.values():
        assert argv[argv.index("--storage") + 1] == url
    assert steps["confirm"][steps["confirm"].index("--study") + 1] == study_name

    exported = cli(*steps["export"])
    assert exported.code == 0, exported.log
    config, provenance = load_toml(Path(steps["retrain"][1]))
    assert provenance["study"] == study_name
    # As printed, with one seed on 300 images instead of three on all 60k (later flags win).
    retrained = cli(*steps["retrain"], "--seeds", "1", "--subset", "300")
    assert retrained.code == 0, retrained.log
    assert "test accuracy" in retrained.out
