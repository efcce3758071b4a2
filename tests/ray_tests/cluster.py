"""A real Ray cluster on 127.0.0.1 for the tests: a head node and nodes joined to it, each
with a custom resource and its name in ``FMNIST_SEARCH_NODE`` (stored on every trial it runs,
so placement can be asserted). Stopped by killing the processes each ``ray start`` began and
their children, never with ``ray stop``, which would end every Ray on the machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
RAY = str(Path(sys.executable).parent / "ray")  # the venv's, beside this Python
# A lost node is declared dead after about 3 s instead of Ray's default 15-30 s; and no token
# authentication, which a token file in ~/.ray would otherwise turn on for the head alone.
TEST_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parents() -> dict[int, int]:
    out = {}
    for pid in _pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        out[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(roots: set[int]) -> set[int]:
    parents, found = _parents(), set(roots)
    grew = True
    while grew:
        new = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= new
        grew = bool(new)
    return found


def kill(pids: set[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Node:
    """The processes one ``ray start`` left running."""

    def __init__(self, name: str, roots: set[int]) -> None:
        self.name, self.roots = name, roots

    def pids(self) -> set[int]:
        return descendants(self.roots)

    def kill(self) -> None:
        kill(self.pids())


class Cluster:
    def __init__(self) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's sockets live here
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[Node] = []

    def _start(self, name: str, args: list[str], env: dict[str, str], cpus: int) -> Node:
        before = _pids()
        resources = json.dumps({f"{name}_node": 10})
        done = subprocess.run(
            [
                RAY,
                "start",
                "--node-ip-address=127.0.0.1",
                f"--num-cpus={cpus}",
                f"--resources={resources}",
                "--disable-usage-stats",
                *args,
            ],
            env=os.environ
            | {"PYTHONPATH": str(ROOT), "FMNIST_SEARCH_NODE": name, "RAY_USAGE_STATS_ENABLED": "0"}
            | TEST_ENV
            | env,
            capture_output=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"ray start for {name} failed: {done.stderr.decode()[-2000:]}")
        marks = (str(self.temp), f":{self.port}")
        roots = {p for p in _pids() - before if any(m in _cmdline(p) for m in marks)}
        node = Node(name, roots)
        self.nodes.append(node)
        return node

    def start_head(self, cpus: int) -> Node:
        return self._start(
            "head",
            [
                "--head",
                f"--port={self.port}",
                f"--temp-dir={self.temp}",
                "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}",
            ],
            {},
            cpus,
        )

    def join(self, name: str, cpus: int, env: dict[str, str] | None = None) -> Node:
        # `ray start` returns once the node has registered with the head.
        return self._start(name, [f"--address={self.address}"], env or {}, cpus)

    def stop(self) -> None:
        pids = set()
        for node in self.nodes:
            pids |= node.pids()
        kill(pids, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)
        kill(pids)
        shutil.rmtree(self.temp, ignore_errors=True)
