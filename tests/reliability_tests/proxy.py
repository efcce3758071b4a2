"""`fmnist-search storage-proxy` as a real process on a free port, for the tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_proxy(db_url: str, log: Path):
    """Yields the proxy's ``grpc://`` URL once it accepts connections; stops it after."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "search.cli",
            "storage-proxy",
            "--storage",
            db_url,
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "storage proxy for" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"storage-proxy did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"grpc://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
