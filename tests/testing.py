"""What tests share besides fixtures, in one place (as Optuna's ``optuna.testing``): the CLI
run in this process or as a process, the tiny study presets, the database servers and a free
port. Conftest files hold only fixtures and hooks, built from these."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import tomli_w

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# The CLI


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str
    prog: str = "fmnist-search"

    @property
    def error(self) -> str:
        """The one line the CLI prints for a user error."""
        lines = [line for line in self.err.splitlines() if line.startswith(f"{self.prog}:")]
        assert len(lines) == 1, self.err
        return lines[0]

    @property
    def log(self) -> str:
        """stdout then stderr, cut to what an assertion message can show."""
        return (self.out + self.err)[-3000:]


def invoke(*args: str | Path | int, prog: str = "fmnist-search") -> CliResult:
    """``fmnist-search ARGS`` (or ``fmnist-bench ARGS``) in this process: exit code, stdout
    and stderr."""
    # Each command's module loads torch, Optuna and Lightning: only when a test runs one.
    module = importlib.import_module(
        {"fmnist-search": "search.cli", "fmnist-bench": "fmnist_bench.cli"}[prog]
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = module.main([str(a) for a in args])
        except SystemExit as e:  # argparse's own usage errors
            code = e.code if isinstance(e.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue(), prog)


def command_line(*args: str | Path | int) -> list[str]:
    """The argv of ``fmnist-search ARGS`` as a process, with this interpreter's install."""
    script = Path(sys.executable).with_name("fmnist-search")
    prefix = [str(script)] if script.is_file() else [sys.executable, "-m", "search.cli"]
    return prefix + [str(a) for a in args]


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``env`` on top, the checkout first on the import path
    (so a process runs the code under test, whatever the venv has installed)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return os.environ | {"PYTHONPATH": path} | (env or {})


def run_process(
    *args: str | Path | int,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    cwd: Path = ROOT,
) -> CliResult:
    """``fmnist-search ARGS`` as a process of its own, waited for."""
    done = subprocess.run(
        command_line(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(env),
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def start_process(
    *args: str | Path | int, log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen:
    """``fmnist-search ARGS`` started, its stdout and stderr going unbuffered to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            command_line(*args),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment({"PYTHONUNBUFFERED": "1"} | (env or {})),
        )


# ---------------------------------------------------------------------------------------------
# Tiny presets

# A CPU-second study: two-stage ResNets 16 wide on 500 images, validated on 500, no pruning.
TINY: dict[str, Any] = {
    "space": "resnet",
    "epochs": 2,
    "subset": 500,
    "val_size": 500,
    "n_trials": 4,
    "sampler": {"name": "tpe", "seed": 0},
    "pruner": {"name": "none"},
    "ranges": {
        "resnet.intro_width": [16],
        "resnet.intro_pool": [True],
        "resnet.width": [16],
        "resnet.stages": [2],
        "resnet.blocks": [1],
        "optim.batch_size": [64],
        "optim.lr": {"low": 1e-4, "high": 0.3},
    },
    "base": {"precision": "32"},
}

# The smallest trial that still exercises the whole path: a 4-wide ResNet on 200 images, one
# epoch, validated on 100; for storage and fault tests, where results don't matter.
SMALLEST: dict[str, Any] = {
    "epochs": 1,
    "subset": 200,
    "val_size": 100,
    "n_trials": 40,
    "sampler": {"name": "random", "seed": None},
    "ranges": {"resnet.intro_pool": None, "optim.lr": None},
    # Below the space's widths: [fixed] may hold a parameter outside the space, [ranges] not.
    "fixed": {"resnet.intro_width": 4, "resnet.width": 4},
    "base": {"channels_last": False},
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged into its tables; a None value drops the key."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def write_preset(path: Path, **changes: Any) -> Path:
    """The TINY preset with ``changes`` merged in, written to ``path``; the study is named
    after the file's stem."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(merged(TINY, changes)))
    return path


def smallest(folder: Path, epochs: int = 1) -> Path:
    """The SMALLEST preset trained for ``epochs`` epochs, written into ``folder``."""
    return write_preset(folder / f"smallest{epochs}.toml", **merged(SMALLEST, {"epochs": epochs}))


# `auto` and the baselines bench on a budget of seconds: the SMALLEST trial for 2 epochs (so a
# trial has a short and a long score), random sampling, no pruning, trials without end.
AUTO_IN_TESTS: dict[str, Any] = merged(
    SMALLEST, {"epochs": 2, "n_trials": 1000, "sampler": {"name": "random", "seed": 0}}
)
FINAL_IMAGES_IN_TESTS = 300  # the final training's images in place of all 60k


# (id, top-level changes to TINY, what the error must name)
BAD_PRESETS = [
    ("unknown-key", {"epochz": 3}, "'epochz'"),
    ("unknown-nested-key", {"sampler": {"name": "tpe", "sed": 1}}, "'sampler.sed'"),
    ("name-key", {"name": "mine"}, "'name'"),
    ("wrong-type", {"epochs": "three"}, "epochs: expected an integer"),
    ("wrong-nested-type", {"pruner": {"name": "none", "options": 3}}, "pruner.options"),
    ("wrong-float-type", {"timeout": "1h"}, "timeout: expected a number"),
    ("bad-budget", {"budget": "soon"}, "budget: 'soon': give a positive duration"),
    ("zero-epochs", {"epochs": 0}, "epochs"),
    ("unknown-space", {"space": "alexnet"}, "'alexnet'"),
    ("range-of-unknown-parameter", {"ranges": {"resnet.kernel": [3]}}, "'resnet.kernel'"),
    ("malformed-range", {"ranges": {"optim.lr": {"low": 1e-3, "hi": 1}}}, "ranges.optim.lr"),
    ("baseline-outside-space", {"baseline": [{"resnet.intro_kernel": 9}]},
     "baseline[0].resnet.intro_kernel"),
    ("baseline-outside-preset-range", {"baseline": [{}, {"resnet.width": 64}]},
     "baseline[1].resnet.width"),
    ("baseline-of-unknown-parameter", {"baseline": [{"vgg.width": 32}]}, "'vgg.width'"),
    ("fixed-wrong-type", {"fixed": {"optim.lr": "fast"}}, "optim.lr: expected a number"),
    ("fixed-unknown-parameter", {"fixed": {"optim.momentum": 0.8}}, "'optim.momentum'"),
    ("unknown-sampler", {"sampler": {"name": "grid"}}, "sampler.name"),
    ("sampler-option", {"sampler": {"name": "random", "options": {"n_startup_trials": 3}}},
     "sampler.options"),
    ("unknown-pruner", {"pruner": {"name": "patient"}}, "pruner.name"),
    ("pruner-option", {"pruner": {"name": "median", "options": {"patience": 3}}},
     "pruner.options"),
    ("base-unknown-key", {"base": {"optim": {"lrr": 0.1}}}, "'base.optim.lrr'"),
    ("base-wrong-type", {"base": {"optim": {"lr": "fast"}}}, "base.optim.lr"),
    ("base-sets-epochs", {"base": {"epochs": 9}}, "base.epochs: set by the study itself"),
    ("base-sets-subset", {"base": {"data": {"subset": 9}}}, "base.data.subset: set by the study"),
    ("base-sets-seed", {"base": {"seed": 3}}, "base.seed: set by the study itself"),
]  # fmt: skip

# What the suite's `quick` changes in the shipped preset: its 3-minute budget cut to seconds
# (1,000 training and 1,000 validation images, 8 trials, no timeout); all else as shipped.
QUICK_IN_TESTS: dict[str, Any] = {"subset": 1000, "val_size": 1000, "n_trials": 8, "timeout": 0}


@dataclass(frozen=True)
class QuickStudy:
    """The `quick` study run once per session (the ``quick_study`` fixture)."""

    url: str
    runs: Path
    out: str

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name="quick", storage=self.url)


def run_args(preset: Path, url: str, name: str, folder: Path, *extra: str) -> list[str]:
    """`fmnist-search run` on one study, its trial files under ``folder``."""
    return ["run", "--study", str(preset), "--storage", url, "--study-name", name,
            "--out", str(folder / "runs"), *extra]  # fmt: skip


def load(url: str, name: str) -> optuna.Study:
    """A study as the CLI opens it (retrying proxy and all)."""
    from search.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url))


# ---------------------------------------------------------------------------------------------
# Servers and ports

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
    "redis": "redis://127.0.0.1:6379/0",
}
KINDS = ("sqlite", *SERVERS)


def unreachable(kind: str) -> str | None:
    """None when the server of ``kind`` answers, else why not."""
    try:
        if kind == "postgresql":
            import psycopg

            psycopg.connect(
                "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
            ).close()
        elif kind == "mysql":
            import pymysql

            pymysql.connect(
                host="127.0.0.1", port=3306, user="root", password="", database="test",
                connect_timeout=3,
            ).close()  # fmt: skip
        else:
            import redis

            redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3).ping()
    except Exception as e:
        return f"{kind} server at 127.0.0.1 not reachable ({type(e).__name__})"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A claim-lease holder stopped mid-hold

_HOLD_AND_WAIT = """
import sys
from search.storage.claim import claim_lock
from search.storage.lease import LeaseLost

with claim_lock(sys.argv[1], sys.argv[2], retry_s=30, lease_s=float(sys.argv[3])) as lease:
    print("held", flush=True)
    sys.stdin.readline()  # stopped here; continued once another holder may have the lease
    try:
        lease.fence()
        print("kept", flush=True)
    except LeaseLost:
        print("lost", flush=True)
"""


@contextlib.contextmanager
def stopped_holder(url: str, study_name: str, lease_s: float = 1.0):
    """A process holding ``study_name``'s claim lease at ``url`` (direct or through a proxy),
    SIGSTOPped. Yields ``resume()``: continue it and say what its fence found, "kept" or
    "lost"."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_AND_WAIT, url, study_name, str(lease_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )

    def resume() -> str:
        holder.send_signal(signal.SIGCONT)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        found = holder.stdout.readline().strip()
        assert holder.wait(timeout=30) == 0
        return found

    try:
        assert holder.stdout.readline() == "held\n"
        holder.send_signal(signal.SIGSTOP)
        yield resume
    finally:
        holder.kill()
        holder.wait()


# What no worker's log may contain when the storage copes.
STORAGE_ERRORS = (
    "database is locked",
    "OperationalError",
    "Traceback",
    "unreachable",
    "ConnectionError",
)
