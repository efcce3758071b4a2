"""Fixtures of the search tests: the CLI run in this process or as a process of its own, tiny
study presets, and one real `quick` study that the inspection, export, retrain and dashboard
tests share (it is the slow part of the suite, so it runs once per session)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import tomli_w

from search.cli import main
from search.study.preset import preset_path

# A CPU-second study: two-stage ResNets 16 wide on 500 images, validated on 500, no pruning.
TINY: dict[str, Any] = {
    "space": "resnet",
    "epochs": 2,
    "subset": 500,
    "val_size": 500,
    "n_trials": 4,
    "sampler": {"name": "tpe", "seed": 0},
    "pruner": {"name": "none"},
    "ranges": {
        "resnet.intro_width": [16],
        "resnet.intro_pool": [True],
        "resnet.width": [16],
        "resnet.stages": [2],
        "resnet.blocks": [1],
        "optim.batch_size": [64],
        "optim.lr": {"low": 1e-4, "high": 0.3},
    },
    "base": {"precision": "32"},
}


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """The one line the CLI prints for a user error."""
        lines = [line for line in self.err.splitlines() if line.startswith("fmnist-search:")]
        assert len(lines) == 1, self.err
        return lines[0]


def invoke(*args: str | Path | int) -> CliResult:
    """``fmnist-search ARGS`` in this process: exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own usage errors
            code = e.code if isinstance(e.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def command_line(*args: str | Path | int) -> list[str]:
    """The argv of ``fmnist-search ARGS`` as a process, with this interpreter's install."""
    script = Path(sys.executable).with_name("fmnist-search")
    prefix = [str(script)] if script.is_file() else [sys.executable, "-m", "search.cli"]
    return prefix + [str(a) for a in args]


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """``cli("run", "--study", ...)``: the CLI in this process."""
    return invoke


@pytest.fixture(scope="session")
def command() -> Callable[..., list[str]]:
    """``command("run", ...)``: the argv that runs the CLI as a process."""
    return command_line


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[list[str]], subprocess.Popen]]:
    """``spawn(argv)`` starts a process in the test's folder, its stdout and stderr going
    unbuffered to stdout.txt and stderr.txt there; it is killed if the test leaves it running."""
    started: list[subprocess.Popen] = []

    def start(args: list[str]) -> subprocess.Popen:
        with (tmp_path / "stdout.txt").open("w") as out, (tmp_path / "stderr.txt").open("w") as err:
            process = subprocess.Popen(
                args,
                cwd=tmp_path,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=err,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a command writes by default (runs/, best.toml) lands in the test's folder.
    (Session and module fixtures run before this one: they pass absolute paths.)"""
    monkeypatch.chdir(tmp_path)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="session")
def tiny_preset() -> Callable[..., Path]:
    """``tiny_preset(path, **changes)`` writes the TINY preset with ``changes`` merged into its
    tables (None drops a key); the study is named after the file's stem."""

    def write(path: Path, **changes: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(_merged(TINY, changes)))
        return path

    return write


@dataclass(frozen=True)
class QuickStudy:
    url: str
    runs: Path
    out: str

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name="quick", storage=self.url)


# What the suite's `quick` changes in the shipped preset: its 3-minute budget cut to seconds
# (1,000 training and 1,000 validation images, 8 trials, no timeout); all else as shipped.
QUICK_IN_TESTS: dict[str, Any] = {"subset": 1000, "val_size": 1000, "n_trials": 8, "timeout": 0}


@pytest.fixture(scope="session")
def quick_study(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> QuickStudy:
    """`fmnist-search run --study quick` once, as a new user runs it but on a budget of
    seconds (QUICK_IN_TESTS), into a fresh SQLite file; the copy is named quick too."""
    root = tmp_path_factory.mktemp("quick")
    url = f"sqlite:///{root}/s.db"
    runs = root / "runs"
    shipped = tomllib.loads(preset_path("quick").read_text())
    preset = root / "quick.toml"
    preset.write_text(tomli_w.dumps(shipped | QUICK_IN_TESTS))
    result = invoke(
        "run", "--study", preset, "--storage", url, "--out", runs, "--data-dir", data_dir,
        "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.err
    return QuickStudy(url, runs, result.out)


@pytest.fixture(scope="session")
def quick_report(quick_study: QuickStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fmnist-search report --study quick -o DIR` once; the report and browser tests read it."""
    out = tmp_path_factory.mktemp("report")
    result = invoke("report", "--study", "quick", "--storage", quick_study.url, "-o", out)
    assert result.code == 0, result.err
    return out


# (id, top-level changes to TINY, what the error must name)
BAD_PRESETS = [
    ("unknown-key", {"epochz": 3}, "'epochz'"),
    ("unknown-nested-key", {"sampler": {"name": "tpe", "sed": 1}}, "'sampler.sed'"),
    ("name-key", {"name": "mine"}, "'name'"),
    ("wrong-type", {"epochs": "three"}, "epochs: expected an integer"),
    ("wrong-nested-type", {"pruner": {"name": "none", "options": 3}}, "pruner.options"),
    ("wrong-float-type", {"timeout": "1h"}, "timeout: expected a number"),
    ("zero-epochs", {"epochs": 0}, "epochs"),
    ("unknown-space", {"space": "alexnet"}, "'alexnet'"),
    ("range-of-unknown-parameter", {"ranges": {"resnet.kernel": [3]}}, "'resnet.kernel'"),
    ("malformed-range", {"ranges": {"optim.lr": {"low": 1e-3, "hi": 1}}}, "ranges.optim.lr"),
    ("baseline-outside-space", {"baseline": [{"resnet.intro_kernel": 9}]},
     "baseline[0].resnet.intro_kernel"),
    ("baseline-outside-preset-range", {"baseline": [{}, {"resnet.width": 64}]},
     "baseline[1].resnet.width"),
    ("baseline-of-unknown-parameter", {"baseline": [{"vgg.width": 32}]}, "'vgg.width'"),
    ("fixed-wrong-type", {"fixed": {"optim.lr": "fast"}}, "optim.lr: expected a number"),
    ("fixed-unknown-parameter", {"fixed": {"optim.momentum": 0.8}}, "'optim.momentum'"),
    ("unknown-sampler", {"sampler": {"name": "grid"}}, "sampler.name"),
    ("sampler-option", {"sampler": {"name": "random", "options": {"n_startup_trials": 3}}},
     "sampler.options"),
    ("unknown-pruner", {"pruner": {"name": "patient"}}, "pruner.name"),
    ("pruner-option", {"pruner": {"name": "median", "options": {"patience": 3}}},
     "pruner.options"),
    ("base-unknown-key", {"base": {"optim": {"lrr": 0.1}}}, "'base.optim.lrr'"),
    ("base-wrong-type", {"base": {"optim": {"lr": "fast"}}}, "base.optim.lr"),
    ("base-sets-epochs", {"base": {"epochs": 9}}, "base.epochs: set by the study itself"),
    ("base-sets-subset", {"base": {"data": {"subset": 9}}}, "base.data.subset: set by the study"),
    ("base-sets-seed", {"base": {"seed": 3}}, "base.seed: set by the study itself"),
]  # fmt: skip


@pytest.fixture(params=BAD_PRESETS, ids=[case[0] for case in BAD_PRESETS])
def bad_preset(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_preset: Callable[..., Path]
) -> tuple[Path, str]:
    """A user preset file with one mistake, and the key its error must name."""
    _, changes, key = request.param
    return tiny_preset(tmp_path / "bad.toml", **changes), key
