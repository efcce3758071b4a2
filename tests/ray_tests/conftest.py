"""A two-node Ray cluster on this machine and PostgreSQL, for every test here. They skip with
the reason where Ray or the server is absent; ``.ci/run`` fails when none of them passed
(``ray_passed`` in the ``FMNIST_SERVER_REPORT`` the reliability suite writes, checked by
``.ci/check-servers``)."""

from __future__ import annotations

import pytest

from tests.ray_tests.cluster import Cluster
from tests.reliability_tests.conftest import _count_server_test
from tests.testing import unreachable


@pytest.fixture(scope="session")
def postgresql() -> str:
    if reason := unreachable("postgresql"):
        pytest.skip(reason)
    return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# Module scope: every Ray test is in one file, and the cluster's processes (GCS, raylets, the
# client server) and the proxy would otherwise idle on the cores for the rest of the suite.
@pytest.fixture(scope="module")
def cluster(postgresql):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'fmnist-search[ray]'")
    c = Cluster()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # the run commands the tests start, as the nodes
        try:
            c.start_head(cpus=4)  # room for the actors Ray moves here from a lost node
            yield c
        finally:
            c.stop()


@pytest.fixture
def join(cluster):
    """``join(name, **env)``: a node joined for one test, its processes killed after it."""
    nodes = []

    def start(name: str, cpus: int = 2, **env: str):
        node = cluster.join(name, cpus, env)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.kill()


def pytest_runtest_logreport(report):
    _count_server_test(report)  # this folder's tests count as server kind "ray"


@pytest.fixture(scope="module")
def proxy(postgresql, tmp_path_factory):
    """A storage proxy in front of the PostgreSQL test database."""
    from tests.reliability_tests.proxy import running_proxy

    with running_proxy(postgresql, tmp_path_factory.mktemp("proxy") / "proxy.log") as url:
        yield url
