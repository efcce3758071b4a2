"""Fixtures of the bench's tests: the CLI runner and the tiny study preset of the search tests,
and a two-trial study of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.search_tests.conftest import cli, in_tmp_path, tiny_preset  # noqa: F401


@pytest.fixture
def tiny_study(tmp_path: Path, tiny_preset) -> Path:  # noqa: F811 (the fixture above)
    return tiny_preset(
        tmp_path / "tiny.toml",
        n_trials=2,
        subset=256,
        val_size=200,
        pruner={"name": "median", "options": {"n_startup_trials": 1}},
    )
