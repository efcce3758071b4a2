"""What one ``run`` means, decided once: ``RunPlan``, made from ``run``'s options and the
resolved preset, checked once and stored on the study (user attribute ``run_plan``, as
``auto`` stores its ``auto_plan``). Every worker, a local process or a Ray actor, joins with
the storage URL and study name alone and reads the plan back (``search.run.join``): none reads
a preset file or an options argv, and none re-derives a default.

The deadline is wall-clock time (``time.time()``), fixed when ``run`` starts: workers start
later, a restarted one much later, and all of them stop at the same moment. Across machines
that assumes synchronised clocks (NTP), as any cluster has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import optuna

from search.errors import SearchError
from search.folders import out_folder
from search.run.options import RunOptions
from search.storage import DEFAULT_URL, safe_url, scheme
from search.storage.artifact_folder import artifacts_dir
from search.study import ResolvedStudy, resolve_text

RUN_PLAN = "run_plan"  # study user attribute
SERVER_STORAGES = ("postgresql", "mysql", "redis", "grpc")  # what machines can share
# New on every run by nature (the timeout says it), or not the search's: `auto` keeps its own
# budget in its plan and compares it there.
NOT_COMPARED = ("deadline", "created_at", "preset.budget")
S = TypeVar("S", bound="Storable")


@dataclass(frozen=True)
class Placement:
    """Where the workers run: this process, K local processes (on ``gpus``), or Ray actors."""

    workers: int
    gpus: tuple[int, ...]
    workers_per_gpu: int
    ray: str | None
    gpus_per_worker: float
    cpus_per_worker: float
    device: str

    @classmethod
    def of(cls, opts: RunOptions) -> Placement:
        return cls(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(cls)})

    @property
    def launches_workers(self) -> bool:
        """Whether ``run`` starts worker processes rather than training itself."""
        return bool(self.ray) or self.workers > 1 or bool(self.gpus)

    @property
    def ray_device(self) -> str:
        """A Ray worker's device: the GPU Ray gave it, else the CPU, never a GPU Ray does not
        know it uses."""
        return "cuda" if self.gpus_per_worker else "cpu"


@dataclass(frozen=True)
class RunPlan:
    """One run's decisions. ``preset`` is the preset's TOML text, so the study is rebuilt
    from the plan alone; ``storage`` is the URL with its password masked (the plan is shown
    wherever user attributes are): a worker is given the URL by its launcher."""

    preset: str
    preset_name: str
    storage: str
    study_name: str
    seed: int  # the sampler's, as the first process of a fresh study uses it (``sampler_seed``)
    n_trials: int  # finished trials the study should hold
    timeout_s: float | None
    deadline: float | None  # time.time() past which no trial starts and a running one stops
    placement: Placement
    out_dir: str
    artifacts: str
    data_dir: str | None
    grace_s: float
    storage_retry_s: float
    keep_checkpoints: int
    created_at: str

    @cached_property
    def study(self) -> ResolvedStudy:
        return resolve_text(self.preset, self.preset_name)

    def sampler_seed(self, index: int, started: int) -> int:
        """The sampler's seed in worker ``index`` (0 for a single process) that joins a study
        holding ``started`` trials that are not WAITING: the plan's seed for the first process
        of a fresh study, else one of its own. Seeded alike, two workers would propose the
        same points, and so would a rerun or ``auto``'s next search share replay the last one's
        draws (Optuna's random sampler, TPE's start-up trials), training those configs again."""
        if index == 0 and started == 0:
            return self.seed
        key = f"{self.seed}:{index}:{started}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big")

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def monotonic_deadline(self) -> float | None:
        """The deadline on this process's ``time.monotonic()`` clock."""
        left = self.seconds_left()
        return None if left is None else time.monotonic() + left

    def but(self, **changes: Any) -> RunPlan:
        """This plan with ``changes``, its resolved study kept."""
        plan = dataclasses.replace(self, **changes)
        if "study" in self.__dict__ and "preset" not in changes:
            plan.__dict__["study"] = self.__dict__["study"]
        return plan

    def with_timeout(self, seconds: float | None) -> RunPlan:
        """This plan with a timeout that starts now."""
        deadline = None if seconds is None else time.time() + seconds
        return self.but(timeout_s=seconds, deadline=deadline)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["placement"]["gpus"] = list(self.placement.gpus)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        placement = data["placement"] | {"gpus": tuple(data["placement"]["gpus"])}
        return cls(**(data | {"placement": Placement(**placement)}))

    def changes(self, before: RunPlan) -> list[str]:
        """``key: before -> now`` for every key this plan changes, the preset's keys each
        named (``preset.sampler.seed``)."""
        old, new = _flat(before), _flat(self)
        keys = [k for k in {**old, **new} if not k.startswith(NOT_COMPARED)]
        return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _flat(plan: RunPlan) -> dict[str, Any]:
    data = plan.to_dict() | {"preset": tomllib.loads(plan.preset)}
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value

    walk("", data)
    return out


def storage_url(opts: RunOptions, study: ResolvedStudy) -> str:
    """The storage a run uses: ``--storage``, else the preset's, else the default file."""
    return opts.storage or study.preset.storage or DEFAULT_URL


def make_plan(opts: RunOptions, study: ResolvedStudy) -> RunPlan:
    """``opts`` and ``study`` resolved into one plan and checked once: the out folder, and a
    storage that every machine can reach when Ray places the workers. Opening the storage and
    joining Ray check the rest, before the study is touched."""
    url = storage_url(opts, study)
    out_folder(opts.out_dir)
    if opts.ray and scheme(url) not in SERVER_STORAGES:
        raise SearchError(
            f"--ray places workers on several machines, which cannot share the storage "
            f"{safe_url(url)}: give a server storage (postgresql://, mysql://, redis://, "
            "grpc://)"
        )

    def here(path: str | Path | None) -> str | None:
        # A Ray worker's current folder is Ray's, not the user's: its paths are absolute.
        return None if path is None else str(Path(path).resolve() if opts.ray else path)

    timeout = opts.timeout if opts.timeout is not None else (study.preset.timeout or None)
    plan = RunPlan(
        preset=study.toml,
        preset_name=study.name,
        storage=safe_url(url),
        study_name=opts.study_name or study.name,
        seed=study.preset.sampler.seed if opts.seed is None else opts.seed,
        n_trials=opts.n_trials or study.preset.n_trials,
        timeout_s=None,
        deadline=None,
        placement=Placement.of(opts),
        out_dir=str(here(opts.out_dir)),
        artifacts=here(artifacts_dir(opts.artifacts, url, opts.out_dir)),
        data_dir=here(opts.data_dir),
        grace_s=opts.grace_s,
        storage_retry_s=opts.storage_retry_s,
        keep_checkpoints=opts.keep_checkpoints,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    plan.__dict__["study"] = study  # this process resolved it already
    return plan.with_timeout(timeout)


def stored_plan(study: optuna.Study) -> RunPlan | None:
    """The plan stored on ``study``; None when there is none this version can read."""
    try:
        return read_attr(study, RUN_PLAN, RunPlan)
    except (TypeError, KeyError):  # a plan of another version: a new run stores its own
        return None


def store(study: optuna.Study, plan: RunPlan) -> RunPlan:
    return write_attr(study, RUN_PLAN, plan)


class Storable(Protocol):
    """A plan kept on its study as JSON: ``RunPlan`` here, ``auto``'s ``Plan``."""

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self: ...


def read_attr(study: optuna.Study, key: str, kind: type[S]) -> S | None:
    """The ``kind`` stored in the study's user attribute ``key``; None when there is none."""
    data = study.user_attrs.get(key)
    return kind.from_dict(data) if data else None


def write_attr(study: optuna.Study, key: str, plan: S) -> S:
    """``plan`` stored in the study's user attribute ``key``, for every process to read."""
    study.set_user_attr(key, plan.to_dict())
    return plan
