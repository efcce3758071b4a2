"""How a search runs, in one typed place: ``RunOptions`` owns every run option's default and
help, builds ``run``'s command-line flags from its fields, reads them back, and writes the
argv of a worker process, so no default is written twice."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from search.errors import SearchError
from search.storage import DEFAULT_URL

DATA_DIR_HELP = (
    "folder with the Fashion-MNIST IDX files "
    "(default: $FMNIST_DATA_DIR, ./data, /usr/share/datasets/fashion-mnist)"
)
DEVICE_HELP = "cpu, cuda, cuda:N (default: auto)"
STORAGE_HELP = (
    f"SQLAlchemy URL, redis:// URL or a storage-proxy's grpc://HOST:PORT (default {DEFAULT_URL})"
)


def _gpus(text: str) -> tuple[int, ...]:
    try:
        gpus = tuple(int(g) for g in text.split(","))
    except ValueError:
        raise SearchError(
            f"--gpus {text!r}: give comma-separated GPU indices such as 0,1"
        ) from None
    if any(g < 0 for g in gpus):
        raise SearchError(f"--gpus {text!r}: GPU indices are 0 or more")
    return gpus


def flag(help: str, *, name: str = "", metavar: str | None = None, parse=None) -> dict[str, Any]:
    """A field's command-line flag: ``--name`` (default: the field's name with dashes)."""
    return {"flag": name, "help": help, "metavar": metavar, "parse": parse}


def _presets() -> list[str]:
    # Deferred: the presets import torch, which a worker's claim path must not.
    from search.study.preset import names

    return names()


@dataclass(frozen=True)
class RunOptions:
    """``fmnist-search run``'s options. A field with ``flag`` metadata is a flag; the others
    (``trial_callbacks``) exist for callers in this process only."""

    study: str = field(
        default="", metadata=flag(lambda: f"a preset ({', '.join(_presets())}) or .toml path")
    )
    n_trials: int | None = field(
        default=None, metadata=flag("finished trials the study should hold in total (resume-safe)")
    )
    timeout: float | None = field(
        default=None, metadata=flag("stop starting trials after SEC seconds", metavar="SEC")
    )
    storage: str | None = field(default=None, metadata=flag(STORAGE_HELP))
    study_name: str | None = field(
        default=None, metadata=flag("name in the storage (default: the preset's name)")
    )
    seed: int | None = field(default=None, metadata=flag("sampler seed (default: the preset's)"))
    out_dir: str = field(
        default="runs",
        metadata=flag("trial logs and checkpoints folder (default runs/)", name="out"),
    )
    workers: int = field(default=1, metadata=flag("worker processes on this machine (default 1)"))
    gpus: tuple[int, ...] = field(
        default=(),
        metadata=flag("comma-separated GPU indices to spread workers over", parse=_gpus),
    )
    workers_per_gpu: int = field(
        default=1, metadata=flag("workers packed on each GPU of --gpus (default 1)")
    )
    ray: str | None = field(
        default=None,
        metadata=flag(
            "place the --workers on the Ray cluster at ADDRESS (auto, HOST:PORT or "
            "ray://HOST:10001); needs a server storage, see docs/DISTRIBUTED.md",
            metavar="ADDRESS",
        ),
    )
    gpus_per_worker: float = field(
        default=0.0,
        metadata=flag(
            "with --ray: GPUs per worker; fractions pack workers on one GPU (default 0)",
            metavar="F",
        ),
    )
    cpus_per_worker: float = field(
        default=1.0, metadata=flag("with --ray: CPUs per worker (default 1)", metavar="C")
    )
    grace_s: float = field(
        default=30.0,
        metadata=flag(
            "a RUNNING trial silent this long lost its worker: it is failed and retried from "
            "its last checkpoint (default 30)",
            name="heartbeat-grace",
            metavar="SEC",
        ),
    )
    storage_retry_s: float = field(
        default=120.0,
        metadata=flag(
            "how long a worker retries a lost storage connection before it stops with an "
            "error (default 120)",
            name="storage-retry",
            metavar="SEC",
        ),
    )
    keep_checkpoints: int = field(
        default=3,
        metadata=flag(
            "checkpoints kept of finished trials: the study's K most accurate; the others' are "
            "deleted as trials finish (default 3)",
            metavar="K",
        ),
    )
    artifacts: str | None = field(
        default=None,
        metadata=flag(
            "artifact store folder (default: beside a SQLite file, else artifacts/ under --out)",
            metavar="DIR",
        ),
    )
    data_dir: str | None = field(default=None, metadata=flag(DATA_DIR_HELP))
    device: str = field(default="auto", metadata=flag(DEVICE_HELP))
    worker_index: int | None = field(
        default=None, metadata=flag(argparse.SUPPRESS)
    )  # set in a worker process that a launcher started
    trial_callbacks: Callable[[int], Any] | None = None  # in-process runs only

    def __post_init__(self) -> None:
        lows = (("workers", 1), ("workers_per_gpu", 1), ("n_trials", 1), ("keep_checkpoints", 0))
        for name, low in lows:
            value = getattr(self, name)
            if value is not None and value < low:
                raise SearchError(f"--{_flag_name(fields()[name])} {value}: must be at least {low}")
        for name in ("timeout", "grace_s", "storage_retry_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SearchError(
                    f"--{_flag_name(fields()[name])} {value}: must be a positive number of seconds"
                )
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise SearchError(
                f"--cpus-per-worker {self.cpus_per_worker:g} --gpus-per-worker "
                f"{self.gpus_per_worker:g}: give more than 0 CPUs and 0 or more GPUs per worker"
            )
        if not self.ray and (self.gpus_per_worker or self.cpus_per_worker != 1.0):
            raise SearchError(
                "--gpus-per-worker and --cpus-per-worker size Ray's workers: add --ray ADDRESS, "
                "or use --gpus and --workers-per-gpu on this machine"
            )

    @property
    def launches_workers(self) -> bool:
        """Whether this command starts worker processes rather than being one."""
        return self.worker_index is None and (self.workers > 1 or bool(self.gpus))

    def worker_argv(self, *, index: int, device: str, study_name: str, url: str) -> list[str]:
        """``fmnist-search run`` as worker ``index`` of this run: one process on ``device``
        against the storage at ``url``; every option it does not change is passed on."""
        worker = dataclasses.replace(
            self,
            worker_index=index,
            device=device,
            study_name=study_name,
            storage=url,
            workers=1,
            gpus=(),
            workers_per_gpu=1,
            ray=None,
            gpus_per_worker=0.0,
            cpus_per_worker=1.0,
        )
        return worker.command()

    def command(self) -> list[str]:
        """``fmnist-search run`` with these options, as a child process of this Python."""
        return [sys.executable, "-m", "search.cli", "run", *self.argv()]

    def argv(self) -> list[str]:
        """The flags that give these options, defaults left out."""
        out = []
        for f in fields().values():
            value = getattr(self, f.name)
            if value == f.default or value is None:
                continue
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            out += [f"--{_flag_name(f)}", text]
        return out


def fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(RunOptions) if "flag" in f.metadata}


def _flag_name(f: dataclasses.Field) -> str:
    return f.metadata["flag"] or f.name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """One flag per option field; ``skip`` names fields whose flag the caller adds itself."""
    for f in fields().values():
        if f.name in skip:
            continue
        meta = f.metadata
        kind = str if meta["parse"] else _scalar(f)
        parser.add_argument(
            f"--{_flag_name(f)}",
            dest=f.name,
            type=kind,
            default=None,
            required=f.name == "study",
            help=meta["help"]() if callable(meta["help"]) else meta["help"],
            metavar=meta["metavar"],
        )


def _scalar(f: dataclasses.Field) -> type:
    text = str(f.type)
    return int if "int" in text else float if "float" in text else str


def from_args(args: argparse.Namespace) -> RunOptions:
    """The options the parsed flags give; a flag not given keeps the field's default."""
    values = {}
    for f in fields().values():
        value = getattr(args, f.name, None)
        if value is None:
            continue
        values[f.name] = f.metadata["parse"](value) if f.metadata["parse"] else value
    return RunOptions(**values)
