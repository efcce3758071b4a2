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


def exit_with_launcher() -> None:
    """In a worker a launcher started: get SIGTERM when the launcher dies (the worker then
    fails its trial as a signal does, with a retry queued). Linux asks the kernel
    (``PR_SET_PDEATHSIG``); elsewhere a thread watches the parent's pid. Nothing happens in a
    process no launcher started."""
    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != int(launcher):  # it died before the kernel was asked
                os.kill(os.getpid(), signal.SIGTERM)
            return
    threading.Thread(target=_watch, args=(int(launcher),), daemon=True).start()


def _watch(launcher: int) -> None:
    while os.getppid() == launcher:
        time.sleep(WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)
