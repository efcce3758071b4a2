"""``.ci/setup``'s steps: one line each on the console, the full output in a log file that a
failure names, with its last lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def step(log: Path, command: str) -> subprocess.CompletedProcess[str]:
    script = f'. .ci/steps.sh; step "{log}" "installing widgets" bash -c \'{command}\'; echo after'
    return subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_noisy_step_prints_one_line(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    done = step(log, "for i in $(seq 500); do echo progress $i; echo warn $i >&2; done")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == [f"setup: installing widgets (log: {log})", "after"]
    assert "progress 500" in log.read_text() and "warn 500" in log.read_text()


def test_a_failing_step_prints_the_log_tail_and_path_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    done = step(log, "seq 100; echo E: Unable to locate package widgets >&2; exit 100")
    assert done.returncode == 1 and "after" not in done.stdout
    err = done.stderr.splitlines()
    assert err[0] == f"setup: installing widgets failed; the last lines of {log}:"
    assert "    E: Unable to locate package widgets" in err
    assert "    75" not in err and len(err) <= 27  # the tail, not the whole log
    assert err[-1] == f"setup: full log: {log}"
    assert "\n1\n" in log.read_text()
