"""``run --ray ADDRESS --workers N``: N workers on a Ray cluster, placed by Ray.

Ray only places and restarts workers; the study, its pruning, the claim lock, heartbeats and
checkpoint retries stay in Optuna's storage, as with ``--workers K`` on one machine (Ray
Tune's schedulers would replace Optuna's pruners, so this uses Ray Core actors, not Tune).

Each worker is a named actor (``<study>/w<i>`` in namespace ``fmnist-search``) that runs the
same worker process ``--workers K`` starts (``fmnist-search worker``, which reads the plan
``run`` stored on the study) as its child and waits for it. The package's code reaches every
node through Ray's ``runtime_env`` (``py_modules``): a node needs Python with the
dependencies, not a checkout. A child process,
not the worker loop inside the actor: the loop's signal handling (a signal marks the running
trial FAIL) needs a process's main thread, which a threaded actor's methods do not run on;
and a child makes a Ray worker behave exactly as a local one, tested by the same suite.
A worker process that exits leaving its trial RUNNING (killed, or its last write cut off):
the actor, which saw it exit, fails that trial at once and queues its retry, as the local
launcher does. A node lost with its workers, or a worker process that exits as infrastructure
fails (a device fault, a kill by the kernel): Ray restarts the actor (up to ``MAX_RESTARTS``
times) and retries its task, and the new child joins the study; a trial lost with its node
(no actor left to see it) is failed after the heartbeat grace. Either is retried from its last
checkpoint when ``--out`` is on storage every node sees. The device follows
``--gpus-per-worker``: at 0 a worker sees no GPU and trains on the CPU, so no actor uses a GPU
Ray has not given it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

import fmnist
import search
import spaces
import studies
from fmnist.provenance import COMMIT_ENV, git_commit
from search.errors import SearchError
from search.run.join import command
from search.run.launcher import check_exits
from search.run.plan import RunPlan
from search.run.ray_worker import NODE_ENV, Worker
from search.storage.claim import tidy
from search.storage.retry import StorageLost
from search.trials import finished_count

MAX_RESTARTS = 3
STOP_WAIT_S = 60.0  # a stopped worker marks its trial FAIL and exits within this
NEEDS_RAY = "--ray needs Ray: pip install 'fmnist-search[ray]'"
NAMESPACE = "fmnist-search"  # the Ray namespace of every worker actor
CODE = (search, fmnist, spaces, studies)  # the packages a worker imports, shipped to the nodes


def runtime_env() -> dict:
    """What Ray ships to every worker's node: this package's code, so a node needs no
    checkout (the plan comes from the storage)."""
    return {"py_modules": [str(Path(m.__file__).parent) for m in CODE]}


def actor_name(study_name: str, index: int | str) -> str:
    """A worker actor's name in ``NAMESPACE``: the study's, then ``/w`` and its index."""
    return f"{study_name}/w{index}"


def connect(address: str, study_name: str) -> None:
    """Join the Ray cluster at ``address``, or one line saying why not; refused too when
    workers of ``study_name`` are on it already (another ``run`` of the same study)."""
    # Every worker's trial lines, not Ray's "[repeated 14x across cluster]" summaries; read
    # when Ray is imported.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray  # an optional extra (`fmnist-search[ray]`), heavy to import
    except ModuleNotFoundError:
        raise SearchError(NEEDS_RAY) from None
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
        ray.init(
            address=address,
            namespace=NAMESPACE,
            # Job-wide: Ray uploads local code only there. Under `ray job submit` it merges
            # with the job's own (a `--working-dir` for the driver).
            runtime_env=runtime_env(),
            log_to_driver=True,
            logging_level="WARNING",
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise SearchError(f"cannot join the Ray cluster at {address}: {reason}; {hint}") from None
    if taken := sorted(
        name for name in ray.util.list_named_actors() if name.startswith(actor_name(study_name, ""))
    ):
        ray.shutdown()
        raise SearchError(
            f"study {study_name!r} has workers on the Ray cluster at {address} already (actors "
            f"{', '.join(taken)} in namespace {NAMESPACE!r}): another run of it is going; let it "
            "finish or stop it first"
        )


def launch(plan: RunPlan, url: str, stored: optuna.Study) -> optuna.Study:
    """The plan's workers as Ray actors on the cluster ``connect`` joined, each joining the
    study ``run`` opened by URL and name; this process reaps their dead trials."""
    import ray  # an optional extra (`fmnist-search[ray]`), heavy to import

    placement = plan.placement
    env = {k: v for k, v in os.environ.items() if k.startswith("FMNIST_") and k != NODE_ENV}
    env["FMNIST_SEARCH_THREADS"] = str(max(1, round(placement.cpus_per_worker)))
    env[COMMIT_ENV] = git_commit()  # the shipped code has no .git to read it from
    print(
        f"study {stored.study_name!r}: {placement.workers} workers on the Ray cluster at "
        f"{placement.ray} ({placement.cpus_per_worker:g} CPU, {placement.gpus_per_worker:g} GPU "
        f"each, device {placement.ray_device})"
    )
    print(
        f"note: a trial lost with its node resumes from its checkpoint only if --out "
        f"{plan.out_dir} is a folder every node sees; elsewhere it restarts from epoch 0",
        file=sys.stderr,
    )
    actor = ray.remote(
        num_cpus=placement.cpus_per_worker,
        num_gpus=placement.gpus_per_worker,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_RESTARTS,
        max_concurrency=2,
        scheduling_strategy="SPREAD",
    )(Worker)
    workers = [
        actor.options(name=actor_name(stored.study_name, i)).remote()
        for i in range(placement.workers)
    ]
    runs = [
        w.run.remote(
            command(url, stored.study_name, i, placement.ray_device),
            env,
            hide_gpus=not placement.gpus_per_worker,
            study=(url, stored.study_name, plan.storage_retry_s),
        )
        for i, w in enumerate(workers)
    ]
    goal = plan.n_trials

    def complete() -> bool:
        # The study's one janitor: its workers never reap, so none holds the lock for it.
        with contextlib.suppress(StorageLost):  # the workers report an outage themselves
            tidy(stored, url, grace_s=plan.grace_s, retry_s=plan.storage_retry_s)
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
