"""Fixtures of the bench's tests: each test in a folder of its own, ``fmnist-bench`` in this
process, and a two-trial study of the tiny preset (``tiny_preset`` comes from
tests/conftest.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.testing import CliResult, invoke


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a bench part writes by default lands in the test's folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def bench() -> Callable[..., CliResult]:
    """``bench("run", "--parts", ...)``: ``fmnist-bench`` in this process."""
    return functools.partial(invoke, prog="fmnist-bench")


@pytest.fixture
def tiny_study(tmp_path: Path, tiny_preset) -> Path:
    return tiny_preset(
        tmp_path / "tiny.toml",
        n_trials=2,
        subset=256,
        val_size=200,
        pruner={"name": "median", "options": {"n_startup_trials": 1}},
    )
