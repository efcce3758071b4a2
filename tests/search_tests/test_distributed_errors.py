"""`run --ray` and `--storage grpc://` mistakes end as one line, before anything is touched."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from search.run.ray_launcher import NEEDS_RAY
from tests.reliability_tests.proxy import free_port

DEAD_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def test_ray_refuses_a_file_storage(cli) -> None:
    result = cli("run", "--study", "quick", "--ray", "auto", "--storage", "sqlite:///s.db")
    assert result.code == 2
    assert "sqlite:///s.db" in result.error and "server storage" in result.error
    assert not Path("s.db").exists()


def test_ray_missing_names_the_extra(cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    result = cli("run", "--study", "quick", "--ray", "auto", "--storage", DEAD_POSTGRES)
    assert result.code == 2
    assert result.error == f"fmnist-search: error: {NEEDS_RAY}"


@pytest.mark.slow  # waits out the gRPC connection timeout
def test_no_proxy_at_the_address(cli) -> None:
    url = f"grpc://127.0.0.1:{free_port()}"
    result = cli("studies", "--storage", url)
    assert result.code == 2
    assert url in result.error and "fmnist-search storage-proxy" in result.error


def test_proxy_url_without_a_port(cli) -> None:
    result = cli("studies", "--storage", "grpc://db")
    assert result.code == 2
    assert "grpc://HOST:PORT" in result.error


def test_ray_sizes_without_ray(cli) -> None:
    result = cli("run", "--study", "quick", "--gpus-per-worker", "0.5")
    assert result.code == 2
    assert "add --ray ADDRESS" in result.error


def test_no_ray_cluster_at_the_address(cli) -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{free_port()}"
    result = cli("run", "--study", "quick", "--ray", address, "--storage", DEAD_POSTGRES)
    assert result.code == 2
    assert f"cannot join the Ray cluster at {address}" in result.error
