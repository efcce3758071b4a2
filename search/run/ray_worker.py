"""The Ray actor behind ``run --ray``: one worker process (``fmnist-search worker``) run as
its child, waited for and reaped (the launcher, ``search.run.ray_launcher``, says why a child).

Its own module, light to import: a Ray worker process imports the module of the actor class
it runs, and this one needs the storage alone, not the launcher's plan and presets. When the
actor moved here, the launcher's module still imported Lightning: 12-14 s of CPU and 0.9 GB on
2 AVX2 cores, which every actor paid besides its child."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys

import optuna

from search.run.device_faults import EXIT_CODE as DEVICE_FAULT_EXIT
from search.storage.claim import reap_exited
from search.storage.liveness import exited
from search.storage.open import open_storage
from search.storage.retry import StorageLost

# The machine a trial ran on, stored as the trial's ``node``: set by the Ray actor (or a
# node's own environment), else the trial's host name.
NODE_ENV = "FMNIST_SEARCH_NODE"
# A child's exits that are the machine's, not the search's: Ray restarts the actor for them.
INFRASTRUCTURE_EXITS = (DEVICE_FAULT_EXIT, -signal.SIGKILL)


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
        self.stopping: str | None = None  # the signal ``stop`` sent

    def run(
        self,
        argv: list[str],
        env: dict[str, str],
        hide_gpus: bool = False,
        study: tuple[str, str, float] | None = None,
    ) -> int:
        """The worker process ``argv`` run to its end; its exit code. ``hide_gpus``: the
        actor holds no GPU, so its process sees none. ``study`` (URL, name, storage retry
        seconds): where a trial it left RUNNING is failed once it exited."""
        import ray  # an optional extra (`fmnist-search[ray]`), heavy to import

        node = os.environ.get(NODE_ENV) or (
            f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
        )
        # The node's own settings win; the driver's FMNIST_* fill in what the node lacks.
        child_env = env | dict(os.environ) | {NODE_ENV: node}
        if hide_gpus:
            child_env["CUDA_VISIBLE_DEVICES"] = ""
        self.proc = subprocess.Popen(
            [sys.executable, *argv[1:]], env=child_env, preexec_fn=_child_signals
        )
        code = self.proc.wait()
        if code != 0 and study is not None:
            self._reap(study, code)
        if code in INFRASTRUCTURE_EXITS and not self.stopping:
            # Dying is how an actor asks Ray for a fresh process: Ray restarts it and retries
            # this task; a normal return would end the worker for good.
            os._exit(code if code > 0 else 1)
        return code

    def _reap(self, study: tuple[str, str, float], code: int) -> None:
        """Fail the trial the exited child left RUNNING, with how it ended, and queue its
        retry: this actor saw the exit, so nobody waits out the heartbeat grace."""
        url, name, retry_s = study
        pid = self.proc.pid
        ended = dict([exited(pid, code, self.stopping)])
        with contextlib.suppress(StorageLost):  # an outage: the driver's grace reaps it later
            stored = optuna.load_study(study_name=name, storage=open_storage(url, retry_s=retry_s))
            if reaped := reap_exited(stored, url, ended, retry_s=retry_s):
                print(
                    f"trial(s) {', '.join(map(str, reaped))} left RUNNING by worker pid {pid} "
                    f"(exit code {code}): failed, retries queued",
                    file=sys.stderr,
                    flush=True,
                )

    def stop(self, signum: int) -> None:
        self.stopping = signal.Signals(signum).name
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)
