"""Fixtures of the search tests: the CLI run in this process or as a process of its own, tiny
study presets, and one real `quick` study that the inspection, export, retrain and dashboard
tests share (it is the slow part of the suite, so it runs once per session: every test that
uses it is `slow`)."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tomli_w

from search.study.preset import preset_path
from tests.testing import (
    BAD_PRESETS,
    QUICK_IN_TESTS,
    QuickStudy,
    command_line,
    environment,
    invoke,
)

SESSION_STUDIES = ("quick_study", "quick_report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that reads a session study waits for its training: it is `slow`."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in SESSION_STUDIES):
            item.add_marker(pytest.mark.slow)


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
                env=environment({"PYTHONUNBUFFERED": "1"}),
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


@pytest.fixture(params=BAD_PRESETS, ids=[case[0] for case in BAD_PRESETS])
def bad_preset(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_preset: Callable[..., Path]
) -> tuple[Path, str]:
    """A user preset file with one mistake, and the key its error must name."""
    _, changes, key = request.param
    return tiny_preset(tmp_path / "bad.toml", **changes), key
