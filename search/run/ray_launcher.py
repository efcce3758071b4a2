"""``run --ray ADDRESS --workers N``: N workers on a Ray cluster, placed by Ray.

Ray only places and restarts workers; the study, its pruning, the claim lock, heartbeats and
checkpoint retries stay in Optuna's storage, as with ``--workers K`` on one machine (Ray
Tune's schedulers would replace Optuna's pruners, so this uses Ray Core actors, not Tune).

Each worker is an actor that runs the same worker process ``--workers K`` starts
(``fmnist-search run ... --worker-index i``) as its child and waits for it. A child process,
not the worker loop inside the actor: the loop's signal handling (a signal marks the running
trial FAIL) needs a process's main thread, which a threaded actor's methods do not run on;
and a child makes a Ray worker behave exactly as a local one, tested by the same suite.
A node lost with its workers: Ray restarts each actor on a surviving node (up to
``MAX_RESTARTS`` times) and the new child joins the study; the lost trial is failed after the
heartbeat grace and retried from its last checkpoint when ``--out`` is on storage every node
sees.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.errors import SearchError
from search.run.launcher import check_exits
from search.run.objective import NODE_ENV
from search.run.options import RunOptions
from search.run.runner import open_study, storage_url, target
from search.storage import StorageLost, safe_url, scheme
from search.storage.claim import tidy
from search.study import ResolvedStudy
from search.trials import finished_count

MAX_RESTARTS = 3
STOP_WAIT_S = 60.0  # a stopped worker marks its trial FAIL and exits within this
NEEDS_RAY = "--ray needs Ray: pip install 'fmnist-search[ray]'"
SERVER_STORAGES = ("postgresql", "mysql", "redis", "grpc")


def _child_signals() -> None:
    """In the child, before it runs: the signals a worker process expects. Ray's threads block
    SIGINT and SIGTERM, and a child inherits that mask, so ``stop`` would never land. And
    SIGTERM when the actor's process dies: a killed actor must not leave an orphan worker that
    keeps its trial RUNNING until the grace runs out."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Worker:
    """A Ray actor holding one worker process. Threaded (``max_concurrency=2``) so that
    ``stop`` runs while ``run`` waits."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def run(self, argv: list[str], env: dict[str, str]) -> int:
        import ray  # an optional extra (`fmnist-search[ray]`), heavy to import

        node = os.environ.get(NODE_ENV) or (
            f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
        )
        # The node's own settings win; the driver's FMNIST_* fill in what the node lacks.
        child_env = env | dict(os.environ) | {NODE_ENV: node}
        self.proc = subprocess.Popen(
            [sys.executable, *argv[1:]], env=child_env, preexec_fn=_child_signals
        )
        return self.proc.wait()

    def stop(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)


def _absolute(opts: RunOptions) -> RunOptions:
    """Paths resolved on the driver: a worker's current folder is Ray's, not the user's."""
    changes = {
        field: str(Path(value).resolve())
        for field in ("out_dir", "data_dir", "artifacts")
        if (value := getattr(opts, field))
    }
    if Path(opts.study).is_file():
        changes["study"] = str(Path(opts.study).resolve())
    return dataclasses.replace(opts, **changes)


def _connect(address: str) -> None:
    import ray  # an optional extra (`fmnist-search[ray]`), heavy to import

    hint = (
        "start one with `ray start --head` or give its address (auto, HOST:PORT, ray://HOST:10001)"
    )
    if address != "auto":
        # Ray waits a minute for a head that is not there, then exits the process.
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as e:
            raise SearchError(
                f"cannot join the Ray cluster at {address}: nothing answers there "
                f"({type(e).__name__}); {hint}"
            ) from None
    try:
        ray.init(address=address, log_to_driver=True, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as e:
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise SearchError(f"cannot join the Ray cluster at {address}: {reason}; {hint}") from None


def launch(study: ResolvedStudy, opts: RunOptions) -> optuna.Study:
    url = storage_url(study, opts)
    if scheme(url) not in SERVER_STORAGES:
        raise SearchError(
            f"--ray places workers on several machines, which cannot share the storage "
            f"{safe_url(url)}: give a server storage (postgresql://, mysql://, redis://, "
            "grpc://)"
        )
    # Every worker's trial lines, not Ray's "[repeated 14x across cluster]" summaries; read
    # when Ray is imported.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray  # an optional extra (`fmnist-search[ray]`), heavy to import
    except ModuleNotFoundError:
        raise SearchError(NEEDS_RAY) from None
    opts = _absolute(opts)
    _connect(opts.ray)  # before the study is created: a wrong address leaves nothing behind
    stored = open_study(study, opts)  # created once, baselines enqueued once
    device = "cuda" if opts.gpus_per_worker else opts.device
    env = {k: v for k, v in os.environ.items() if k.startswith("FMNIST_") and k != NODE_ENV}
    env["FMNIST_SEARCH_THREADS"] = str(max(1, round(opts.cpus_per_worker)))
    print(
        f"study {stored.study_name!r}: {opts.workers} workers on the Ray cluster at {opts.ray} "
        f"({opts.cpus_per_worker:g} CPU, {opts.gpus_per_worker:g} GPU each)"
    )
    print(
        f"note: a trial lost with its node resumes from its checkpoint only if --out "
        f"{opts.out_dir} is a folder every node sees; elsewhere it restarts from epoch 0",
        file=sys.stderr,
    )
    actor = ray.remote(
        num_cpus=opts.cpus_per_worker,
        num_gpus=opts.gpus_per_worker,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_RESTARTS,
        max_concurrency=2,
        scheduling_strategy="SPREAD",
    )(Worker)
    workers = [actor.remote() for _ in range(opts.workers)]
    runs = [
        w.run.remote(
            opts.worker_argv(index=i, device=device, study_name=stored.study_name, url=url), env
        )
        for i, w in enumerate(workers)
    ]
    goal = target(study, opts)

    def complete() -> bool:
        # The study's one janitor: its workers never reap, so none holds the lock for it.
        with contextlib.suppress(StorageLost):  # the workers report an outage themselves
            tidy(stored, url, grace_s=opts.grace_s, retry_s=opts.storage_retry_s)
        running = stored.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return finished_count(stored) >= goal and not running

    try:
        codes = _wait(workers, runs, complete)
    except KeyboardInterrupt:
        _stop(workers, runs)
        raise SearchError(
            "interrupted; the running trials are marked FAIL and every finished trial is "
            "kept: rerun the same command to finish the study"
        ) from None
    finally:
        for w in workers:
            ray.kill(w)
    check_exits(codes, stored, goal)
    return stored


def _wait(workers: list, runs: list, complete) -> list[int | str]:
    """Each worker's exit code, or why Ray gave it up. ``complete()`` is asked every round
    (it also reaps dead workers' trials); once one worker has finished and the study is
    complete, the rest are stopped: a worker Ray is still restarting after a
    lost node has nothing left to do. SIGINT and SIGTERM on the driver raise
    KeyboardInterrupt (set here: a shell starts a background job with SIGINT ignored)."""
    import ray  # an optional extra (`fmnist-search[ray]`), heavy to import

    def interrupt(signum, _frame):
        raise KeyboardInterrupt

    old = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        pending, codes = list(runs), {}
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in done:
                try:
                    codes[ref] = ray.get(ref)
                except ray.exceptions.RayError as e:
                    codes[ref] = type(e).__name__  # restarts spent, or no node left
            if complete() and pending and 0 in codes.values():
                _stop([w for w, r in zip(workers, runs, strict=True) if r in pending], pending)
                codes |= dict.fromkeys(pending, 0)
                break
        return [codes[r] for r in runs]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _stop(workers: list, runs: list) -> None:
    """SIGINT to every worker process, so each marks its running trial FAIL; then wait."""
    import ray  # an optional extra (`fmnist-search[ray]`), heavy to import

    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for w in workers:
            w.stop.remote(signal.SIGINT)
        ray.wait(runs, num_returns=len(runs), timeout=STOP_WAIT_S)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
