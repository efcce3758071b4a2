"""A worker's loop: claim a trial while the study is short, run it, record how it ended.

Claiming happens under the study's claim lock (see ``storage.claim_lock``): K workers on one
study, on one machine or many, stop at exactly ``target`` finished trials, and only one of
them at a time reaps trials whose worker died.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from search.constraints import REJECTIONS_IN_A_ROW, rejected_in_a_row, trained
from search.errors import SearchError
from search.liveness import GRACE_S, Heartbeat, reap_stale
from search.objective import Interrupted, TrialFailed
from search.storage import claim_lock

MAX_FAILS_IN_A_ROW = 3  # then the problem is not the trial: stop and say so


class _Stop:
    """A signal's effect depends on where it lands: inside a trial's training it interrupts
    at once (the trial is then marked FAIL with the reason); anywhere else (claiming,
    telling) it only asks the loop to stop before the next claim, so no storage write is cut
    in half and no claimed trial is left RUNNING."""

    reason: str | None = None
    in_trial = False


STOP = _Stop()


@contextlib.contextmanager
def signals_interrupt():
    """SIGINT and SIGTERM stop the worker cleanly while a search runs."""

    def handler(signum, _frame):
        # Once: a second signal must not break the clean-up that marks the trial.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        STOP.reason = f"interrupted by {signal.Signals(signum).name}"
        if STOP.in_trial:
            STOP.in_trial = False
            raise Interrupted(STOP.reason)

    STOP.reason, STOP.in_trial = None, False
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run_objective(objective, trial):
    STOP.in_trial = True
    try:
        return objective(trial)
    finally:
        STOP.in_trial = False


def claim(
    study: optuna.Study, target: int, url: str | None, grace_s: float, retry_s: float = 120.0
):
    """A trial to run, ``None`` to wait for other workers' trials, or ``False`` when done."""
    with claim_lock(url, study.study_name, retry_s):
        reap_stale(study, grace_s)
        trials = study.get_trials(deepcopy=False)
        finished = len(trained(trials))
        if finished >= target:
            return False
        if finished + sum(t.state == TrialState.RUNNING for t in trials) >= target:
            return None  # enough in flight; one may still fail and need a retry
        if rejected_in_a_row(trials) >= REJECTIONS_IN_A_ROW:
            raise SearchError(
                f"the last {REJECTIONS_IN_A_ROW} configs were all over the [constraints] "
                "budget; loosen the budget or narrow [ranges] to smaller networks"
            )
        return study.ask()


def work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | list[float]],  # several values: Pareto
    *,
    target: int,
    url: str | None,
    timeout: float | None = None,
    grace_s: float = GRACE_S,
    poll_s: float = 2.0,
    retry_s: float = 120.0,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> list[optuna.trial.FrozenTrial]:
    """Run trials until the study holds ``target`` finished ones (or ``timeout`` passes).
    Returns the trials this worker ran. Raises ``Interrupted`` after marking its trial."""
    start, ran, fails = time.monotonic(), [], 0
    while timeout is None or time.monotonic() - start < timeout:
        if STOP.reason:
            raise Interrupted(STOP.reason)
        trial = claim(study, target, url, grace_s, retry_s)
        if trial is False:
            break
        if trial is None:
            time.sleep(poll_s)
            continue
        with Heartbeat(study._storage, trial._trial_id):
            try:
                frozen = study.tell(trial, _run_objective(objective, trial))
            except optuna.TrialPruned:
                frozen = study.tell(trial, state=TrialState.PRUNED)
            except TrialFailed:
                frozen = study.tell(trial, state=TrialState.FAIL)
            except Interrupted as e:
                trial.set_user_attr("fail_reason", str(e))
                study.tell(trial, state=TrialState.FAIL)
                raise
        ran.append(frozen)
        if on_trial:
            on_trial(frozen)
        fails = fails + 1 if frozen.state == TrialState.FAIL else 0
        if fails >= MAX_FAILS_IN_A_ROW:
            break
    return ran
