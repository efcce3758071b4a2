"""Fixtures shared by every test: the real data, an isolated cache, a tiny run config, the
four storage backends; and the report of how many server tests ran."""

from __future__ import annotations

import os

# One torch thread per process: the suite runs two test processes, and many tests start
# workers of their own, on two cores. With torch's default (a thread per core) in each, the
# OpenMP threads spin against each other: the full suite took 958 s that way and 629 s with
# one thread each (same machine, same commit). Set before torch is imported, so the workers
# the tests start inherit it; a user's own OMP_NUM_THREADS is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fmnist.config import DataConfig, OptimConfig, ResNetConfig, RunConfig
from fmnist.data import FILES, find_dir
from tests.testing import KINDS, SERVERS, CliResult, invoke, unreachable, write_preset


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu"):  # not `keywords`: a folder named gpu is one
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the suite's parsed-data cache out of the user's ~/.cache (subprocesses inherit it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_CACHE_DIR", str(tmp_path_factory.mktemp("fmnist-cache")))
        yield


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache of this test's own, and an empty in-process memo."""
    from fmnist import data

    path = tmp_path / "cache"
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(path))
    monkeypatch.setattr(data, "_MEMO", {})
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder the real Fashion-MNIST files are found in, as a user's run would find it
    (FMNIST_DATA_DIR, ./data, Debian's package, else torchvision's download)."""
    found = find_dir(None, "train")
    find_dir(None, "test")  # the lockbox tests need both parts
    return found.resolve()


def _real_file(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(directory / name)  # find_dir vouched for both parts


@pytest.fixture
def make_data_dir(tmp_path: Path, data_dir: Path) -> Callable[..., Path]:
    """``make_data_dir("train")``: a fresh folder holding links to the real files of the
    parts named, and nothing else."""

    def make(*parts: str, name: str = "data") -> Path:
        path = tmp_path / name
        path.mkdir(parents=True)
        for part in parts:
            for spec in FILES[part]:
                real = _real_file(data_dir, spec.name)
                (path / real.name).symlink_to(real)
        return path

    return make


@pytest.fixture
def train_only_dir(make_data_dir: Callable[..., Path]) -> Path:
    """A data folder holding the two training files and no test files."""
    return make_data_dir("train", name="train-only")


@pytest.fixture
def tiny_config() -> RunConfig:
    """A run that takes about a second on two CPU cores; its accuracy means nothing."""
    return RunConfig(
        model=ResNetConfig(intro_width=8, widths=(8, 16), blocks=(1, 1), strides=(2, 2)),
        data=DataConfig(val_size=1000, subset=1000),
        optim=OptimConfig(batch_size=64),
        epochs=1,
        precision="32",  # the same arithmetic on every CPU; bf16 has tests of its own
    )


@pytest.fixture(params=KINDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL of each kind: a fresh SQLite file, or the shared server (skipped, with
    the reason, where it does not answer)."""
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/study.db"
    request.node.add_marker(pytest.mark.server)  # counted in the server report
    if reason := unreachable(kind):
        pytest.skip(reason)
    return SERVERS[kind]


@pytest.fixture
def study_name() -> str:
    """A study name no other test (or earlier run on the shared servers) uses."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """``cli("run", "--study", ...)``: the CLI in this process."""
    return invoke


@pytest.fixture(scope="session")
def tiny_preset() -> Callable[..., Path]:
    """``tiny_preset(path, **changes)`` writes the TINY preset with ``changes`` merged into its
    tables (None drops a key); the study is named after the file's stem."""
    return write_preset
