"""``fmnist-bench run``'s options, typed and frozen: each field owns its flag's name, default
and help (``search.options`` builds the flags from them, as for ``fmnist-search run``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from fmnist_bench.trainer import EPOCH_IMAGES
from search.auto.options import budget_field
from search.errors import SearchError
from search.options import csv, flag, flag_fields, flag_name
from search.run.options import DATA_DIR_HELP, DEVICE_HELP
from search.storage.liveness import GRACE_S


@dataclass(frozen=True)
class BenchOptions:
    """What to measure and how long. ``images``, ``epochs`` and ``repeats`` left None take
    their device's default in ``for_device``, once the device is known."""

    parts: tuple[str, ...] = field(
        default=("throughput", "overhead", "search", "memory", "gpu"),
        metadata=flag(
            "comma-separated parts, from those listed above (default throughput,overhead,"
            "search,memory,gpu; gpu is skipped without CUDA)",
            parse=csv(str),
        ),
    )
    run_configs: tuple[str, ...] = field(
        default=("vgg", "resnet"),
        metadata=flag(
            "run configs to measure, shipped names or TOML files (default vgg,resnet)",
            parse=csv(str),
            aliases=("presets",),  # the flag's first name
        ),
    )
    images: int | None = field(
        default=None,
        metadata=flag(
            f"training images per throughput epoch (default 2048 on CPU, {EPOCH_IMAGES} on GPU)"
        ),
    )
    epochs: int | None = field(
        default=None,
        metadata=flag(
            "epochs per throughput run; the first is not timed, the fastest other counts "
            "(default 3 on CPU, 2 on GPU)"
        ),
    )
    repeats: int | None = field(
        default=None,
        metadata=flag(
            "runs of each throughput measurement, interleaved; the fastest counts "
            "(default 2 on CPU, 1 on GPU)"
        ),
    )
    precision: str | None = field(
        default=None,
        metadata=flag(
            "our trainer's precision in the throughput part (default: the config's, auto)",
            choices=("auto", "32", "bf16"),
        ),
    )
    pipeline2020_workers: int = field(
        default=0,
        metadata=flag(
            "DataLoader workers of the 2020 pipeline (default 0)",
            aliases=("report-workers",),  # the flag's first name
        ),
    )
    study: str = field(
        default="quick",
        metadata=flag("study preset for overhead, search and memory (default quick)"),
    )
    n_trials: int | None = field(
        default=None, metadata=flag("trials per search run (default: the study's)")
    )
    memory_trials: int = field(
        default=2, metadata=flag("trials the memory part's worker runs (default 2)")
    )
    gpu_epochs: int = field(
        default=3, metadata=flag("60k-image epochs per GPU fast-path run (default 3)")
    )
    packs: tuple[int, ...] = field(
        default=(1, 2, 4, 8),
        metadata=flag("worker counts to pack on one GPU (default 1,2,4,8)", parse=csv(int)),
    )
    pack_study: str = field(
        default="resnet", metadata=flag("study for packed trials (default resnet)")
    )
    pack_seconds: float = field(
        default=120.0,
        metadata=flag("seconds each packing level starts trials for (default 120)"),
    )
    peak_tflops: float | None = field(
        default=None,
        metadata=flag("the GPU's peak bf16 TFLOP/s (default: the data sheet's, for known GPUs)"),
    )
    accuracy_images: int = field(
        default=5000,
        metadata=flag("training images per run of the accuracy part (default 5000)"),
    )
    accuracy_epochs: int = field(
        default=3, metadata=flag("epochs per run of the accuracy part (default 3)")
    )
    accuracy_seeds: int = field(
        default=3, metadata=flag("seeds per precision in the accuracy part (default 3)")
    )
    peer_seconds: float = field(
        default=600.0,
        metadata=flag("seconds of search for each side of the peer part (default 600)"),
    )
    peer_study: str = field(
        default="cpu",
        metadata=flag("our study preset set beside Optuna's recipe in the peer part (default cpu)"),
    )
    peer_images: int | None = field(
        default=None,
        metadata=flag(
            "training images both sides of the peer part train on (default: all 60k; "
            "fewer for quick checks only)"
        ),
    )
    json: str | None = field(
        default=None,
        metadata=flag("where to write the figures (default runs/bench/bench-<time>.json)"),
    )
    work_dir: str | None = field(
        default=None,
        metadata=flag(
            "keep the studies, checkpoints and model cards the parts make in this folder, "
            "e.g. to run `confirm` on the peer part's study (default: a temporary folder, "
            "removed)"
        ),
    )
    data_dir: str | None = field(default=None, metadata=flag(DATA_DIR_HELP))
    device: str = field(default="auto", metadata=flag(DEVICE_HELP))

    def __post_init__(self) -> None:
        fields = flag_fields(BenchOptions)
        counts = (
            "images", "epochs", "repeats", "n_trials", "memory_trials", "gpu_epochs",
            "accuracy_images", "accuracy_epochs", "accuracy_seeds", "peer_images",
        )  # fmt: skip
        for name in counts:
            value = getattr(self, name)
            if value is not None and not value >= 1:
                raise SearchError(f"--{flag_name(fields[name])} {value}: must be at least 1")
        if not self.pipeline2020_workers >= 0:
            raise SearchError(
                f"--pipeline2020-workers {self.pipeline2020_workers}: must be 0 or more"
            )
        if not self.packs or not all(k >= 1 for k in self.packs):
            raise SearchError(
                f"--packs {','.join(map(str, self.packs))}: give worker counts of 1 or more"
            )
        for name in ("pack_seconds", "peer_seconds", "peak_tflops"):
            value = getattr(self, name)
            if value is not None and not value > 0:  # NaN fails too
                raise SearchError(f"--{flag_name(fields[name])} {value}: must be above 0")
        if not self.parts:
            raise SearchError("--parts is empty; name at least one part")

    def for_device(self, on_gpu: bool) -> BenchOptions:
        """The options with every device-dependent default filled in."""
        return dataclasses.replace(
            self,
            images=self.images or (EPOCH_IMAGES if on_gpu else 2048),
            # On a CPU, more and shorter epochs: the fastest of several is robust to other work.
            epochs=self.epochs or (2 if on_gpu else 3),
            # Interleaved runs on a CPU: a shared machine's drift then hits every pipeline alike.
            repeats=self.repeats or (1 if on_gpu else 2),
        )


# ``fmnist-bench baselines --methods``: ours, then what a user would do instead.
BASELINE_METHODS = ("ours", "recipe", "random", "one-epoch", "optuna")


@dataclass(frozen=True)
class BaselinesOptions:
    """``fmnist-bench baselines``: ours (``auto``) against what a user would do instead with
    the same wall time, each method's final training counted."""

    budget_s: float = budget_field("each method's whole wall time, final training included")
    study: str = field(
        default="cpu",
        metadata=flag("the study preset ours, random search and top-K search (default cpu)"),
    )
    repeats: int = field(
        default=1, metadata=flag("runs of every method, interleaved; mean +- std (default 1)")
    )
    methods: tuple[str, ...] = field(
        default=tuple(BASELINE_METHODS),
        metadata=flag(
            f"comma-separated methods, from {', '.join(BASELINE_METHODS)} (default all)",
            parse=csv(str),
        ),
    )
    again: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "comma-separated methods of --methods whose runs, kept in a bench cut short, "
            "are measured afresh (one run on an unlike machine, say; default none)",
            parse=csv(str),
        ),
    )
    seeds: int = field(
        default=1,
        metadata=flag(
            "seeds of each method's final training: the first in its budget, the others "
            "after it and outside it, for the test's mean over seeds (default 1)"
        ),
    )
    top_k: int = field(
        default=3, metadata=flag("configs the one-epoch baseline trains to the end (default 3)")
    )
    images: int | None = field(
        default=None,
        metadata=flag(
            "training images of every final training and of Optuna's recipe (default all "
            "60k; fewer for quick checks only)",
            metavar="N",
        ),
    )
    json: str | None = field(
        default=None,
        metadata=flag("where to write the figures (default runs/bench/baselines-<time>.json)"),
    )
    work_dir: str | None = field(
        default=None,
        metadata=flag(
            "keep each method's study, checkpoints and model card here (default: a temporary "
            "folder, removed)"
        ),
    )
    data_dir: str | None = field(default=None, metadata=flag(DATA_DIR_HELP))
    device: str = field(default="auto", metadata=flag(DEVICE_HELP))

    def __post_init__(self) -> None:
        if not self.budget_s > 0:
            raise SearchError("--budget: give a positive duration such as 15m, 1h or 900s")
        for name in ("repeats", "seeds", "top_k", "images"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SearchError(f"--{name.replace('_', '-')} {value}: must be at least 1")
        unknown = [m for m in self.methods if m not in BASELINE_METHODS] or not self.methods
        if unknown:
            raise SearchError(
                f"--methods {','.join(self.methods)!r}: give one or more of "
                f"{', '.join(BASELINE_METHODS)}"
            )
        if stray := [m for m in self.again if m not in self.methods]:
            raise SearchError(
                f"--again {','.join(self.again)!r}: {', '.join(stray)} not in --methods "
                f"{','.join(self.methods)!r}; name each method to measure afresh in both"
            )


SCALE_STORAGES = ("postgresql", "postgresql-proxy", "redis", "sqlite-proxy")
SCALE_DRILLS = ("kill", "stop", "restart-db", "restart-proxy")
PRIVATE = "private"  # ``--postgresql``: a server of the simulator's own


@dataclass(frozen=True)
class ScaleOptions:
    """``fmnist-bench scale``: many simulated workers (the real loop, claim, heartbeat,
    sampler and pruner; a sleep for training) on real servers, per storage, worker count and
    study size; and fault drills under that load."""

    storages: tuple[str, ...] = field(
        default=SCALE_STORAGES,
        metadata=flag(
            f"comma-separated storages, from {', '.join(SCALE_STORAGES)} (default all)",
            parse=csv(str),
        ),
    )
    workers: tuple[int, ...] = field(
        default=(8, 32, 64),
        metadata=flag(
            "comma-separated worker counts; '' for the drills alone (default 8,32,64)",
            parse=csv(int),
        ),
    )
    prefill: tuple[int, ...] = field(
        default=(0, 1000, 10000),
        metadata=flag(
            "comma-separated study sizes, finished trials added before the workers start "
            "(default 0,1000,10000)",
            parse=csv(int),
        ),
    )
    trials: int = field(default=200, metadata=flag("trials each cell runs (default 200)"))
    epoch_s: float = field(
        default=1.0, metadata=flag("seconds a simulated epoch sleeps (default 1.0)")
    )
    study: str = field(
        default="quick",
        metadata=flag("the study preset whose space, sampler and pruner run (default quick)"),
    )
    drills: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            f"comma-separated fault drills, from {', '.join(SCALE_DRILLS)}: SIGKILL 10%% of "
            "the workers, SIGSTOP the lock holder for --stop-s, stop a private PostgreSQL for "
            "--outage-s, kill and restart the proxy (default none)",
            parse=csv(str),
        ),
    )
    processes: int = field(
        default=0,
        metadata=flag(
            "at most this many processes for a cell's simulated workers, the rest threads "
            "beside them (each its own study, sampler and claims; one storage cache a process), "
            "as Optuna's n_jobs packs them; 0: a process each (default)"
        ),
    )
    drill_workers: int = field(default=32, metadata=flag("workers of a drill (default 32)"))
    drill_prefill: int = field(
        default=1000, metadata=flag("study size a drill starts from (default 1000)")
    )
    stop_s: float = field(
        default=120.0, metadata=flag("seconds the stop drill holds the holder (default 120)")
    )
    outage_s: float = field(
        default=45.0, metadata=flag("seconds the restart-db drill keeps it down (default 45)")
    )
    grace_s: float = field(
        default=GRACE_S,
        metadata=flag(
            f"seconds without a heartbeat before a trial is reaped (default {GRACE_S:g})"
        ),
    )
    postgresql: str = field(
        default=PRIVATE,
        metadata=flag(
            f"the PostgreSQL database: {PRIVATE!r} starts a server of its own in a temporary "
            "folder, allowing 400 connections (64 direct workers hold about 5 each, more than "
            "a default server's 100; a shared server's other users are left alone), or a URL "
            f"(default {PRIVATE})"
        ),
    )
    redis: str = field(
        default="redis://127.0.0.1:6379/0", metadata=flag("the Redis server (default local)")
    )
    cell_timeout_s: float = field(
        default=900.0, metadata=flag("seconds after which a cell is stopped (default 900)")
    )
    json: str | None = field(
        default=None,
        metadata=flag("where to write the figures (default runs/bench/scale-<time>.json)"),
    )
    work_dir: str | None = field(
        default=None,
        metadata=flag("keep plans, event logs and SQLite files here (default: a temporary folder)"),
    )

    def __post_init__(self) -> None:
        for name, given, known in (
            ("storages", self.storages, SCALE_STORAGES),
            ("drills", self.drills, SCALE_DRILLS),
        ):
            if unknown := [v for v in given if v not in known]:
                raise SearchError(
                    f"--{name} {','.join(unknown)}: unknown; choose from {', '.join(known)}"
                )
        if not self.storages or not self.prefill or not (self.workers or self.drills):
            raise SearchError(
                "--storages and --prefill need a value each, and --workers or --drills one"
            )
        if not all(w >= 1 for w in (*self.workers, self.drill_workers, self.trials)):
            raise SearchError("--workers, --drill-workers and --trials: must be at least 1")
        if not all(p >= 0 for p in (*self.prefill, self.drill_prefill, self.processes)):
            raise SearchError("--prefill, --drill-prefill and --processes: must be 0 or more")
        fields = flag_fields(ScaleOptions)
        for name in ("epoch_s", "stop_s", "outage_s", "grace_s", "cell_timeout_s"):
            if not getattr(self, name) > 0:  # NaN fails too
                raise SearchError(
                    f"--{flag_name(fields[name])} {getattr(self, name)}: must be above 0"
                )
