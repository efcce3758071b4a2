"""The fault-injection suite: real storages, real worker processes, every test `slow`.

Tests that need a server carry the ``server`` marker or a ``[postgresql``-style id and skip,
with the reason, where the server is absent; ``.ci/run`` reads the report written at the end
(``FMNIST_SERVER_REPORT``, see tests/conftest.py) and fails when none of them passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)
