"""A local launcher's workers end when it does: a launcher killed outright (SIGKILL, an OOM
kill) forwards no signal, and its workers, in sessions of their own, would otherwise go on
holding their trials and their GPU memory."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

LAUNCHER_ENV = "FMNIST_SEARCH_LAUNCHER_PID"  # set by the launcher for its workers
PR_SET_PDEATHSIG = 1
WATCH_S = 1.0
# After SIGTERM, how long an orphan may take to fail its trial cleanly before it is killed:
# a signal that lands in a garbage-collector callback is swallowed, and the trial goes on.
# A killed worker's trial is retried after the heartbeat grace instead.
TERM_GRACE_S = 5.0


def exit_with_launcher() -> None:
    """In a worker a launcher started: SIGTERM when the launcher dies (the worker fails its
    trial as a signal does, retry queued), SIGKILL if it is still there ``TERM_GRACE_S``
    later. Linux's kernel sends the first at once (``PR_SET_PDEATHSIG``); a thread watching
    the parent's pid sends it elsewhere, and the second everywhere. Nothing happens in a
    process no launcher started."""
    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    threading.Thread(target=_watch, args=(int(launcher),), daemon=True).start()


def _watch(launcher: int) -> None:
    while os.getppid() == launcher:
        time.sleep(WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM is ignored by the handler
    time.sleep(TERM_GRACE_S)
    os.kill(os.getpid(), signal.SIGKILL)
