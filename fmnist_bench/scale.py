"""``fmnist-bench scale``: how many workers one study can feed, and what the claim lock does
under load and under faults. Simulated workers (``fmnist_bench.scale_worker``: the real worker
loop, claim, heartbeat, sampler and pruner, a sleep for training) run as processes of their
own against real servers: PostgreSQL directly or through the storage proxy, Redis, SQLite
through the proxy. One cell is one storage, worker count and study size (the study prefilled
with finished trials as real workers store them, ``fmnist_bench.claim_bench``); its record
holds trials/s, the lock's wait and hold, the sampler's time, database connections, the
proxy's CPU, reaps (false ones: a live worker's trial) and the exactness checks. A drill is a
cell with a fault injected once a quarter of its trials have finished."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna
from optuna.trial import TrialState

from fmnist.provenance import git_commit, package_versions
from fmnist_bench.bench import cut_short, show
from fmnist_bench.claim_bench import PRESET, finished_trials, percentile
from fmnist_bench.options import PRIVATE, ScaleOptions
from fmnist_bench.scale_worker import WORKER_ATTR, WorkerPlan
from fmnist_bench.servers import PrivatePostgres, Proxy
from search.storage import RETRY_S, open_storage
from search.storage.claim import tidy
from search.storage.liveness import RETRY_OF
from search.study import ResolvedStudy, objectives, resolve
from search.trials import trained

# Storage kind -> (database, through the proxy).
KINDS = {
    "postgresql": ("postgresql", False),
    "postgresql-proxy": ("postgresql", True),
    "redis": ("redis", False),
    "sqlite-proxy": ("sqlite", True),
}
DRILL_AT = 0.25  # the fault comes once this share of a drill's trials has finished
KILL_SHARE = 0.10
JANITOR_S = 5.0  # as the launcher's: the study's one janitor reaps this often
READY_S = 600.0  # a cell's workers must all have started within this
FAKE_FINGERPRINT = "0123456789abcdef"  # no data is loaded: the simulated trials train nothing

# What every cell's record holds (a cell that could not run holds ``error`` instead).
COLUMNS = (
    "storage", "workers", "prefill", "drill", "study_at_start", "prefill_s", "target",
    "finished", "ran", "exact", "unique_numbers", "configs_twice", "left_running", "failed",
    "pruned", "reaped", "false_reaps", "killed", "drill_detail", "exit_codes", "timed_out",
    "seconds", "trials_per_s", "longest_gap_s", "lock_wait_ms", "lock_hold_ms",
    "lock_hold_warm_ms", "lock_hold_cpu_ms", "claim_ms", "sampler_ms", "connections",
    "connections_per_worker", "proxy_cpu_s", "worker_rss_mb", "torch_in_workers", "load_average",
    "processes",
)  # fmt: skip


@dataclass
class Cell:
    """One measured row: where it ran and, once run, what it measured."""

    storage: str
    workers: int
    prefill: int
    drill: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


def tagged(url: str, tag: str) -> str:
    """``url`` naming its clients ``tag``, so the connections of one cell can be counted."""
    sep = "&" if "?" in url else "?"
    if url.startswith("postgresql"):
        return f"{url}{sep}application_name={tag}"
    if url.startswith("redis"):
        return f"{url}{sep}client_name={tag}"
    return url


def connections(url: str, tag: str) -> int | None:
    """Open connections named ``tag`` on the server of ``url``; None where it has none."""
    try:
        if url.startswith("postgresql"):
            import psycopg  # the postgres extra; only for a PostgreSQL cell

            u = urlsplit(url.split("?")[0].replace("+psycopg", ""))
            dsn = f"host={u.hostname} port={u.port or 5432} user={u.username} dbname={u.path[1:]}"
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                return conn.execute(sql, (tag,)).fetchone()[0]
        if url.startswith("redis"):
            import redis  # the redis extra; only for a Redis cell

            clients = redis.Redis.from_url(url.split("?")[0]).client_list()
            return sum(c.get("name") == tag for c in clients)
    except Exception:
        return None  # the server is down (a drill): this sample counts nothing
    return None


def new_study(study: ResolvedStudy, url: str, prefill: int) -> tuple[str, float]:
    """A study named for this run, holding ``prefill`` finished trials as real workers store
    them; its name and the seconds the prefill took."""
    name = f"scale-{uuid.uuid4().hex[:10]}"
    stored = optuna.create_study(
        storage=open_storage(url, retry_s=RETRY_S),
        study_name=name,
        directions=objectives.directions(study.objectives),
        sampler=study.sampler(0),
        pruner=study.pruning.optuna,
    )
    for key, value in study.attrs(FAKE_FINGERPRINT).items():
        stored.set_user_attr(key, value)
    start = time.perf_counter()
    for first in range(0, prefill, 500):  # in chunks: a few thousand trials' objects at once
        stored.add_trials(finished_trials(min(500, prefill - first), study.preset.epochs))
    return name, time.perf_counter() - start


class EventLog:
    """Reads the workers' event files as they grow."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.paths = [folder / f"w{i}.jsonl" for i in range(workers)]
        self.offsets = [0] * workers
        self.events: list[list[dict[str, Any]]] = [[] for _ in range(workers)]

    def read(self) -> None:
        for i, path in enumerate(self.paths):
            if not path.exists():
                continue
            with open(path) as f:
                f.seek(self.offsets[i])
                chunk = f.read()
            whole = chunk[: chunk.rfind("\n") + 1]  # a killed worker's last line may be cut
            self.offsets[i] += len(whole)
            for line in whole.splitlines():
                with contextlib.suppress(ValueError):
                    self.events[i].append(json.loads(line))

    def last(self, i: int) -> str | None:
        self.read()
        return self.events[i][-1]["e"] if self.events[i] else None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e | {"w": i} for i, es in enumerate(self.events) for e in es if e["e"] == kind]


class Janitor(threading.Thread):
    """The study's one janitor, as the launcher is (its workers never reap): ``tidy`` every
    ``JANITOR_S`` in a thread, so a drill that holds the lock or the database never stalls the
    driver; the trials it reaped, with when."""

    def __init__(self, url: str, name: str, grace_s: float) -> None:
        super().__init__(daemon=True, name="janitor")
        self.url, self.name, self.grace_s = url, name, grace_s
        self.reaped: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        study = None
        while not self.stop.wait(JANITOR_S):
            with contextlib.suppress(Exception):  # a drill's outage: the next round retries
                study = study or optuna.load_study(
                    study_name=self.name, storage=open_storage(self.url)
                )
                for number in tidy(study, self.url, grace_s=self.grace_s, retry_s=5.0):
                    self.reaped.append((time.time(), number))


def packed(workers: int, processes: int) -> list[range]:
    """The workers each process runs: as even as can be over at most ``processes`` (0: one
    process a worker)."""
    n = min(workers, processes) if processes else workers
    return [range(j * workers // n, (j + 1) * workers // n) for j in range(n)]


def in_trial(log: EventLog, i: int, window_s: float) -> bool:
    """Worker ``i`` began its trial's training (the config drawn) less than ``window_s`` ago:
    killed now, it surely leaves that trial RUNNING. A worker near its trial's end might
    finish the trial between this look and the kill (its end event written after the trial
    is told), and leave nothing for the janitor."""
    log.read()
    for e in reversed(log.events[i]):
        if e["e"] == "sample":
            return time.time() - e["t"] < window_s
        if e["e"] in ("claim", "trial"):  # claimed but not yet drawn, or between trials
            return False
    return False


def quantiles(seconds: list[float]) -> dict[str, float | None]:
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"p50": None, "p99": None, "n": 0}
    return {"p50": statistics.median(ms), "p99": percentile(ms, 0.99), "n": len(ms)}


class Scale:
    """One run of ``fmnist-bench scale``: its options, study, scratch folder and servers."""

    def __init__(self, opts: ScaleOptions, work: Path) -> None:
        self.opts, self.work = opts, work
        self.study = resolve(opts.study)
        self.tag = f"fmnist-scale-{uuid.uuid4().hex[:8]}"
        self.attrs = {
            "split_fingerprint": FAKE_FINGERPRINT,
            "device": "simulated",
            "threads": 1,
            "packages": package_versions(),
            "git_commit": git_commit(),
        }
        self.studies: dict[tuple[str, int], str] = {}  # (database URL, prefill) -> study
        self.private: PrivatePostgres | None = None

    def database(self, kind: str, private: bool = False) -> str:
        db = KINDS[kind][0]
        if db == "postgresql":
            private = private or self.opts.postgresql == PRIVATE
            return tagged(self.private_pg().url if private else self.opts.postgresql, self.tag)
        if db == "redis":
            return tagged(self.opts.redis, self.tag)
        return f"sqlite:///{self.work}/scale.db"

    def private_pg(self) -> PrivatePostgres:
        if self.private is None:
            self.private = PrivatePostgres()
            self.private.start()
        return self.private

    def study_for(self, db_url: str, prefill: int) -> tuple[str, float]:
        """A study of ``prefill`` finished trials on ``db_url``: an empty one per cell, a
        prefilled one shared by the cells of that size (each cell then adds its trials)."""
        key = (db_url, prefill)
        if prefill and key in self.studies:
            return self.studies[key], 0.0
        name, fill_s = new_study(self.study, db_url, prefill)
        print(f"  study {name}: {prefill} finished trials added in {fill_s:.0f}s", flush=True)
        self.studies[key] = name
        return name, fill_s

    def plan(self, url: str, name: str, target: int, workers: int, folder: Path) -> WorkerPlan:
        s = self.study
        seed = s.preset.sampler.seed
        return WorkerPlan(
            url=url,
            study_name=name,
            target=target,
            epochs=s.preset.epochs,
            epoch_s=self.opts.epoch_s,
            space=s.space,
            dims=s.dims,
            fixed=s.preset.fixed,
            base=s.base,
            samplers=tuple(s.sampler(seed + i) for i in range(workers)),
            pruner=s.pruning.optuna,
            rule=s.pruning.rule,
            attrs=self.attrs,
            grace_s=self.opts.grace_s,
            retry_s=max(RETRY_S, 2 * self.opts.outage_s),
            events=str(folder),
            go=str(folder / "go"),
        )

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        opts = self.opts
        private = cell.drill == "restart-db"
        db_url = self.database(cell.storage, private)
        name, fill_s = self.study_for(db_url, cell.prefill)
        folder = self.work / f"cell-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        proxy = None
        if KINDS[cell.storage][1]:
            proxy = Proxy(db_url, folder / "proxy.log")
            proxy.start()
        url = proxy.url if proxy else db_url
        study = optuna.load_study(study_name=name, storage=open_storage(url, retry_s=RETRY_S))
        before = study.get_trials(deepcopy=False)
        at_start, first_new = len(trained(before)), len(before)
        target = at_start + opts.trials
        plan_path = folder / "plan.pickle"
        plan_path.write_bytes(pickle.dumps(self.plan(url, name, target, cell.workers, folder)))
        packs = packed(cell.workers, opts.processes)
        procs = []
        for j, pack in enumerate(packs):
            with open(folder / f"p{j}.log", "w") as log:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "fmnist_bench.scale_worker",
                            str(plan_path),
                            str(pack[0]),
                            str(len(pack)),
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                )
        log = EventLog(folder, cell.workers)
        try:
            record = self._drive(cell, procs, packs, log, proxy, url, name, target, db_url)
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGCONT)
                    if p.poll() is None:
                        p.kill()
                p.wait()
            if proxy:
                proxy.kill()
        log.read()
        record.update(
            self._judge(cell, log, name, db_url, first_new, at_start, target, record["killed"])
        )
        peak = record["connections"]
        record.update(
            storage=cell.storage, workers=cell.workers, prefill=cell.prefill, drill=cell.drill,
            connections_per_worker=None if peak is None else peak / cell.workers,
            prefill_s=fill_s, study_at_start=at_start, load_average=os.getloadavg()[0],
            processes=len(procs),
        )  # fmt: skip
        return record

    def _drive(self, cell, procs, packs, log, proxy, url, name, target, db_url) -> dict:
        """Start every worker at once, run the drill when its moment comes, sample the
        connections and the proxy's CPU; returns what only the driver saw. ``procs[j]`` runs
        the workers ``packs[j]``."""
        opts = self.opts
        ready_by = time.monotonic() + READY_S
        while True:
            log.read()
            ready = sum(any(e["e"] == "ready" for e in es) for es in log.events)
            if ready == cell.workers:
                break
            if any(p.poll() is not None for p in procs) or time.monotonic() > ready_by:
                raise RuntimeError(
                    f"{cell.workers - ready} workers did not start; see {log.paths[0].parent}"
                )
            time.sleep(0.2)
        janitor = Janitor(db_url if proxy is None else url, name, opts.grace_s)
        janitor.start()
        cpu0 = proxy.cpu_s() if proxy else 0.0
        (Path(log.paths[0].parent) / "go").touch()
        go = time.time()
        deadline = time.monotonic() + opts.cell_timeout_s
        peak, killed, drill, resume_at, next_sample = 0, [], {}, None, 0.0
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
            log.read()
            done = len(log.of("trial"))
            if time.monotonic() >= next_sample:
                n = connections(db_url, self.tag)
                peak = max(peak, n or 0)
                next_sample = time.monotonic() + 1.0
            if cell.drill and not drill and done >= DRILL_AT * opts.trials:
                drill = self._inject(cell.drill, procs, packs, log, proxy, killed)
                if "resume" in drill:
                    resume_at = time.monotonic() + drill.pop("resume")
            if resume_at is not None and time.monotonic() >= resume_at:
                resume_at = None
                self._resume(cell.drill, drill, proxy)
        timed_out = any(p.poll() is None for p in procs)
        janitor.stop.set()
        cpu = proxy.cpu_s() - cpu0 if proxy else None
        janitor.join(timeout=30)
        return {
            "go": go,
            "timed_out": timed_out,
            "connections": peak if KINDS[cell.storage][0] != "sqlite" else None,
            "proxy_cpu_s": cpu,
            "killed": killed,
            "drill_detail": drill or None,
            "reaped_by_janitor": [n for _, n in janitor.reaped],
            "exit_codes": sorted(p.returncode for p in procs if p.returncode is not None),
        }

    def _inject(self, drill, procs, packs, log, proxy, killed) -> dict[str, Any]:
        """The fault, once; returns what it did (``resume``: seconds until it is undone).
        A signal reaches a process, so every worker packed in it."""
        at = time.time()
        owner = {i: j for j, pack in enumerate(packs) for i in pack}
        if drill == "kill":
            # Processes with a worker early in its first epoch (pruning and the trial's end
            # come later): each leaves a RUNNING trial for the janitor. Under load all may
            # be claiming: wait.
            want = max(1, math.ceil(KILL_SHARE * len(procs)))
            window = self.opts.epoch_s / 2
            for _ in range(3000):
                busy = [
                    j
                    for j, p in enumerate(procs)
                    if p.poll() is None and any(in_trial(log, i, window) for i in packs[j])
                ]
                if len(busy) >= want:
                    break
                time.sleep(0.01)
            for j in random.Random(0).sample(busy, min(want, len(busy))):
                procs[j].kill()
                killed.extend(packs[j])
            return {"at": at, "killed": list(killed)}
        if drill == "stop":
            for _ in range(100_000):  # until a worker is caught holding the lock
                holders = [
                    i for i in owner if procs[owner[i]].poll() is None and log.last(i) == "acq"
                ]
                for i in holders:
                    pid = procs[owner[i]].pid
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(0.01)
                    if log.last(i) == "acq":
                        return {"at": at, "stopped": i, "pid": pid, "resume": self.opts.stop_s}
                    os.kill(pid, signal.SIGCONT)
                time.sleep(0.002)
            return {"at": at, "stopped": None}
        if drill == "restart-db":
            self.private_pg().stop()
            return {"at": at, "resume": self.opts.outage_s}
        proxy.kill()
        proxy.start()
        return {"at": at, "restarted_after_s": time.time() - at}

    def _resume(self, drill, detail, proxy) -> None:
        if drill == "stop":
            with contextlib.suppress(ProcessLookupError):
                os.kill(detail["pid"], signal.SIGCONT)
        if drill == "restart-db":
            self.private_pg().start()
        detail["undone_after_s"] = time.time() - detail["at"]

    def _judge(self, cell, log, name, db_url, first_new, at_start, target, killed) -> dict:
        """The cell's figures from the workers' events and the stored study."""
        study = optuna.load_study(study_name=name, storage=open_storage(db_url, retry_s=60.0))
        trials = study.get_trials(deepcopy=False)
        new = [t for t in trials if t.number >= first_new]
        numbers = [t.number for t in trials]
        finished = len(trained(trials))
        by_params = defaultdict(list)
        for t in new:
            if t.state != TrialState.RUNNING:
                by_params[json.dumps(t.params, sort_keys=True)].append(t)
        twice = 0
        for group in by_params.values():
            chained = {t.number for t in group if t.user_attrs.get(RETRY_OF) is not None}
            roots = [t for t in group if t.number not in chained]
            twice += max(0, len(roots) - 1)  # more than one trial of it outside a retry chain
        reaped = [
            t for t in new if str(t.user_attrs.get("fail_reason", "")).startswith("worker lost")
        ]
        # Who ran a trial: its claim event (written as the claim returns, so a worker killed
        # before its trial set an attribute still has one), else the attribute.
        claimer = {e["number"]: e["w"] for e in log.of("claim") if e["number"] is not None}
        false_reaps = [
            t.number
            for t in reaped
            if claimer.get(t.number, t.user_attrs.get(WORKER_ATTR)) not in killed
        ]
        waits = [e["wait"] for e in log.of("acq") if e["where"] == "claim"]
        holds = [e for e in log.of("rel") if e["where"] == "claim"]
        first_hold = {}
        for e in holds:
            first_hold.setdefault(e["w"], e["t"])
        warm = [e["hold"] for e in holds if first_hold[e["w"]] != e["t"]]
        ended = sorted(e["t"] for e in log.of("trial"))
        go = min((e["t"] for e in log.of("go")), default=None)
        seconds = (ended[-1] - go) if ended and go else None
        gaps = [b - a for a, b in zip([go, *ended], ended, strict=False)] if go else []
        rss = [e["rss_mb"] for e in log.of("ready") + log.of("exit")]
        return {
            "finished": finished,
            "target": target,
            "ran": len(ended),
            "exact": finished == target,
            "unique_numbers": len(numbers) == len(set(numbers)),
            "configs_twice": twice,
            "left_running": sum(t.state == TrialState.RUNNING for t in new),
            "failed": sum(t.state == TrialState.FAIL for t in new),
            "pruned": sum(t.state == TrialState.PRUNED for t in new),
            "reaped": len(reaped),
            "false_reaps": len(false_reaps),
            "seconds": seconds,
            "trials_per_s": len(ended) / seconds if seconds else None,
            "longest_gap_s": max(gaps, default=None),
            "lock_wait_ms": quantiles(waits),
            "lock_hold_ms": quantiles([e["hold"] for e in holds]),
            "lock_hold_warm_ms": quantiles(warm),
            "lock_hold_cpu_ms": quantiles([e["cpu"] for e in holds]),
            "claim_ms": quantiles([e["s"] for e in log.of("claim") if e["number"] is not None]),
            "sampler_ms": quantiles([e["s"] for e in log.of("sample")]),
            "worker_rss_mb": max(rss, default=None),
            "torch_in_workers": any(e["torch"] or e["lightning"] for e in log.of("go")),
        }


def cells(opts: ScaleOptions) -> list[Cell]:
    """The sweep (each storage, study size and worker count; none for ``--workers ''``), then
    each drill on every storage it applies to."""
    out = [Cell(kind, w, p) for p in opts.prefill for kind in opts.storages for w in opts.workers]
    for drill in opts.drills:
        for kind in opts.storages:
            db, proxied = KINDS[kind]
            if (drill == "restart-db" and db != "postgresql") or (
                drill == "restart-proxy" and not proxied
            ):
                continue  # no database to restart here, or no proxy
            out.append(Cell(kind, opts.drill_workers, opts.drill_prefill, drill))
    return out


def fit(records: list[dict[str, Any]], trial_s: float) -> list[dict[str, Any]]:
    """Workers one study can feed, per storage and study size: a trial's seconds over the
    lock's hold p99 (the lock serialises claims; while one is held every other claim waits),
    from the cell with the most workers."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for r in records:
        if r["drill"] is None and r["lock_hold_ms"]["p99"]:
            key = (r["storage"], r["prefill"])
            if key not in best or r["workers"] > best[key]["workers"]:
                best[key] = r
    return [
        {
            "storage": r["storage"],
            "prefill": r["prefill"],
            "workers": r["workers"],
            "hold_p99_ms": r["lock_hold_ms"]["p99"],
            "feeds_sim": trial_s / (r["lock_hold_ms"]["p99"] / 1000),
            "feeds_per_minute_trial": 60 / (r["lock_hold_ms"]["p99"] / 1000),
        }
        for r in best.values()
    ]


def _ms(q: dict[str, Any]) -> str:
    return "-" if q["p50"] is None else f"{q['p50']:.1f}/{q['p99']:.1f}"


def row(r: dict[str, Any]) -> list[Any]:
    def num(v: Any, spec: str = "") -> str:
        return "-" if v is None else format(v, spec)

    return [
        r["storage"], r["workers"], r["study_at_start"], r["drill"] or "",
        num(r["trials_per_s"], ".1f"), _ms(r["lock_wait_ms"]), _ms(r["lock_hold_ms"]),
        _ms(r["sampler_ms"]), num(r["connections"]), num(r["proxy_cpu_s"], ".1f"),
        r["false_reaps"], f"{r['finished']}/{r['target']}", r["configs_twice"],
    ]  # fmt: skip


HEADER = [
    "storage", "workers", "study", "drill", "trials/s", "wait ms p50/p99", "hold ms p50/p99",
    "sampler ms p50/p99", "conns", "proxy CPU s", "false reaps", "finished/target", "twice",
]  # fmt: skip


def _key(cell: Cell | dict[str, Any]) -> tuple:
    get = cell.get if isinstance(cell, dict) else cell.__dict__.get
    return get("storage"), get("workers"), get("prefill"), get("drill")


def earlier_cells(path: Path, opts: ScaleOptions) -> dict[tuple, dict[str, Any]]:
    """The cells a run of the same options measured before it was cut short, from the JSON it
    left at ``path``: the same command continues it, as `fmnist-search run` continues a
    study. A finished run's file is measured again from the start. Each kept cell names the
    commit it ran on."""
    data = cut_short(path, opts, "a run")
    if data is None:
        return {}
    commit = data.get("machine", {}).get("git_commit")
    kept = [c | {"commit": c.get("commit", commit)} for c in data["cells"] if "error" not in c]
    return {_key(c): c for c in kept}


def run(
    opts: ScaleOptions,
    work: Path,
    on_cell: Callable[[dict[str, Any]], None] | None = None,
    earlier: dict[tuple, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every cell of ``opts``, printed as it ends; the records and the fit. ``on_cell`` hears
    the figures so far after each cell, so a run cut short keeps what it measured; the cells
    in ``earlier`` (``earlier_cells``) are kept, not run again."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    scale = Scale(opts, work)
    records = []
    earlier = earlier or {}
    try:
        for cell in cells(opts):
            drill = f", drill {cell.drill}" if cell.drill else ""
            where = f"cell: {cell.storage}, {cell.workers} workers, prefill {cell.prefill}{drill}"
            if (kept := earlier.get(_key(cell))) is not None:
                print(f"{where}: kept from the run cut short (commit {kept['commit']})")
                records.append(kept)
                continue
            print(where, flush=True)
            try:
                records.append(scale.run_cell(cell))
            except Exception as e:  # one cell that cannot run (a server absent) is a row saying so
                print(f"  failed: {type(e).__name__}: {e}", flush=True)
                records.append({"storage": cell.storage, "workers": cell.workers,
                                "prefill": cell.prefill, "drill": cell.drill,
                                "error": f"{type(e).__name__}: {e}"[:300]})  # fmt: skip
                continue
            show("scale", HEADER, [row(records[-1])])
            if on_cell:
                on_cell(figures(opts, scale, records, partial=True))
    finally:
        if scale.private:
            scale.private.cleanup()
    result = figures(opts, scale, records)
    if done := [r for r in records if "error" not in r]:
        show("scale: every cell", HEADER, [row(r) for r in done])
    if fitted := result["fit"]:
        show(
            f"workers one study can feed (trial length / lock hold p99); simulated trial "
            f"{result['trial_s']:g} s",
            ["storage", "study", "from workers", "hold p99 ms", "feeds (sim trial)",
             "feeds (1-minute trial)"],
            [[f["storage"], f["prefill"], f["workers"], f"{f['hold_p99_ms']:.1f}",
              f"{f['feeds_sim']:.0f}", f"{f['feeds_per_minute_trial']:.0f}"] for f in fitted],
        )  # fmt: skip
    return result


def figures(
    opts: ScaleOptions, scale: Scale, records: list[dict[str, Any]], partial: bool = False
) -> dict[str, Any]:
    """What the JSON holds: every cell's record, the fit, and whether cells are to come."""
    trial_s = scale.study.preset.epochs * opts.epoch_s
    done = [r for r in records if "error" not in r]
    return {
        "cells": records,
        "fit": fit(done, trial_s),
        "trial_s": trial_s,
        "preset": PRESET,
        "partial": partial,
    }
