"""How a search runs, in one typed place: ``RunOptions`` owns every run option's default and
help; ``search.options`` builds ``run``'s command-line flags from its fields and reads them
back, so no default is written twice. ``run`` turns them into one ``RunPlan``
(``search.run.plan``), stored on the study, which every worker reads back."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from search import flags
from search.errors import SearchError
from search.options import argv, check, flag
from search.storage import DEFAULT_URL
from search.storage.liveness import GRACE_S, check_grace
from search.storage.retry import RETRY_S

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
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of GPU indices; give comma-separated indices such as 0,1"
        ) from None
    if any(g < 0 for g in gpus):
        raise argparse.ArgumentTypeError(f"{text!r}: GPU indices are 0 or more")
    return gpus


def _presets() -> list[str]:
    # Deferred: the presets import torch, which a worker's claim path must not.
    from search.study.preset import names

    return names()


@dataclass(frozen=True)
class RunOptions:
    """``fmnist-search run``'s options. A field with ``flag`` metadata is a flag; the others
    (``trial_callbacks``) exist for callers in this process only."""

    study: str = field(
        default="",
        metadata=flag(lambda: f"a preset ({', '.join(_presets())}) or .toml path", required=True),
    )
    n_trials: int | None = field(
        default=None,
        metadata=flag(
            "finished trials the study should hold in total (resume-safe)", parse=flags.count
        ),
    )
    timeout: float | None = field(
        default=None,
        metadata=flag("stop starting trials after SEC seconds", metavar="SEC", parse=flags.seconds),
    )
    storage: str | None = field(default=None, metadata=flag(STORAGE_HELP))
    study_name: str | None = field(
        default=None, metadata=flag("name in the storage (default: the preset's name)")
    )
    seed: int | None = field(
        default=None, metadata=flag("sampler seed (default: the preset's)", parse=flags.seed)
    )
    out_dir: str = field(
        default="runs",
        metadata=flag("trial logs and checkpoints folder (default runs/)", name="out"),
    )
    workers: int = field(
        default=1, metadata=flag("worker processes on this machine (default 1)", parse=flags.count)
    )
    gpus: tuple[int, ...] = field(
        default=(),
        metadata=flag("comma-separated GPU indices to spread workers over", parse=_gpus),
    )
    workers_per_gpu: int = field(
        default=1,
        metadata=flag("workers packed on each GPU of --gpus (default 1)", parse=flags.count),
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
            parse=flags.number(low=0),
        ),
    )
    cpus_per_worker: float = field(
        default=1.0,
        metadata=flag(
            "with --ray: CPUs per worker (default 1)", metavar="C", parse=flags.number(above=0)
        ),
    )
    grace_s: float = field(
        default=GRACE_S,
        metadata=flag(
            "a RUNNING trial silent this long lost its worker: it is failed and retried from "
            f"its last checkpoint; longer than --storage-retry (default {GRACE_S:g})",
            name="heartbeat-grace",
            metavar="SEC",
            parse=flags.seconds,
        ),
    )
    storage_retry_s: float = field(
        default=RETRY_S,
        metadata=flag(
            "how long a worker retries a lost storage connection, or waits for the claim "
            f"lease, before it stops with an error (default {RETRY_S:g})",
            name="storage-retry",
            metavar="SEC",
            parse=flags.seconds,
        ),
    )
    keep_checkpoints: int = field(
        default=3,
        metadata=flag(
            "checkpoints kept of finished trials: the study's K most accurate; the others' are "
            "deleted as trials finish (default 3)",
            metavar="K",
            parse=flags.whole(0),
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
    trial_callbacks: Callable[[int], Any] | None = None  # in-process runs only

    def __post_init__(self) -> None:
        check(self)
        check_grace(self.grace_s, self.storage_retry_s)
        if not self.ray and (self.gpus_per_worker or self.cpus_per_worker != 1.0):
            raise SearchError(
                "--gpus-per-worker and --cpus-per-worker size Ray's workers: add --ray ADDRESS, "
                "or use --gpus and --workers-per-gpu on this machine"
            )
        if self.ray and not self.gpus_per_worker and self.device.startswith("cuda"):
            raise SearchError(
                f"--device {self.device} with --ray: Ray gives a worker a GPU only through "
                "--gpus-per-worker; add --gpus-per-worker 1 (a fraction packs workers on a GPU)"
            )

    def ignored(self) -> list[str]:
        """One line per flag given that this kind of run does not use, so none is ignored
        silently."""
        notes = []
        if self.ray:
            if self.gpus or self.workers_per_gpu != 1:
                notes.append(
                    "--gpus and --workers-per-gpu place local workers and are ignored with "
                    "--ray; Ray places GPU workers by --gpus-per-worker"
                )
            if self.gpus_per_worker and self.device != "auto":
                notes.append(
                    f"--device {self.device} is ignored with --gpus-per-worker: each Ray "
                    "worker uses the GPU Ray gives it"
                )
            return notes
        if self.gpus:
            if self.workers != 1:
                notes.append(
                    f"--workers {self.workers} is ignored with --gpus: each GPU listed gets "
                    f"--workers-per-gpu ({self.workers_per_gpu}) workers"
                )
            if self.device != "auto":
                notes.append(
                    f"--device {self.device} is ignored with --gpus: each worker uses its GPU"
                )
        elif self.workers_per_gpu != 1:
            notes.append(
                f"--workers-per-gpu {self.workers_per_gpu} is ignored without --gpus; "
                "--workers sets the number of workers"
            )
        return notes

    def command(self) -> list[str]:
        """``fmnist-search run`` with these options, as a child process of this Python."""
        return [sys.executable, "-m", "search.cli", "run", *self.argv()]

    def argv(self) -> list[str]:
        """The flags that give these options, defaults left out."""
        return argv(self)
