from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.testing import QuickStudy, free_port

pytestmark = pytest.mark.slow


def test_dashboard_serves_the_study(quick_study: QuickStudy, command, spawn, tmp_path) -> None:
    port = free_port()
    process = spawn(command("dashboard", "--storage", quick_study.url, "--port", port))
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, (tmp_path / "stderr.txt").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                body = json.load(r)
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "the dashboard did not answer within 30 s"
            time.sleep(0.2)
    process.terminate()
    process.wait(timeout=10)
    names = [s["study_name"] for s in body["study_summaries"]]
    assert names == ["quick"]
    (summary,) = body["study_summaries"]
    assert summary["directions"] == ["maximize"]
    assert f"on http://127.0.0.1:{port}" in (tmp_path / "stdout.txt").read_text()
