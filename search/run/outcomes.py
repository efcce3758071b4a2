"""How a trial ends other than with a value, torch-free: the worker's loop and the claim path
import it without the training stack (``search.run.objective`` raises them)."""

from __future__ import annotations


class TrialFailed(Exception):
    """A trial that ended in error; its reason is stored on the trial as ``fail_reason``."""


class Interrupted(Exception):
    """SIGINT/SIGTERM during a search. An ``Exception`` on purpose: Lightning turns a
    KeyboardInterrupt into ``sys.exit(1)``, which Optuna would let leave the trial RUNNING."""


def one_line(e: BaseException) -> str:
    """A failed trial's ``fail_reason``: the error's type and first line."""
    return f"{type(e).__name__}: {e}".splitlines()[0][:500]


def bare(e: BaseException) -> BaseException:
    """``e`` again without its traceback, cause or context: what the worker needs to know
    of how a trial ended, and nothing that keeps the trial's frames alive."""
    return type(e)(*e.args)
