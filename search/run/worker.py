"""A worker's loop: claim a trial while the study is short (``search.storage.claim``), run
it, record how it ended; and what a signal does to it. A trial stopped by a signal is marked
FAIL and queued for a retry that resumes from its last checkpoint, as a dead worker's is. A
trial the janitor reaped while its worker lived (a pause longer than the grace) is dropped at
the worker's next write to it: its retry is queued already, so the worker claims the next."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.run.device_faults import DeviceFault
from search.run.outcomes import Interrupted, TrialFailed
from search.storage.claim import claim, tidy
from search.storage.liveness import GRACE_S, Heartbeat, beat_interval, enqueue_retry
from search.storage.retry import RETRY_S

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


def work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | list[float]],  # several values: Pareto
    *,
    target: int,
    url: str | None,
    timeout: float | None = None,
    grace_s: float = GRACE_S,
    poll_s: float = 2.0,
    retry_s: float = RETRY_S,
    janitor: bool = True,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> list[optuna.trial.FrozenTrial]:
    """Run trials until the study holds ``target`` finished ones (or ``timeout`` passes).
    Returns the trials this worker ran. Raises ``Interrupted`` after marking its trial.
    ``janitor``: this worker also reaps dead workers' trials (``search.storage.claim.tidy``)
    before each claim; False for a launcher's workers, whose launcher does it for all of them
    (they reap only while they wait, so a dead launcher cannot leave them waiting forever)."""
    start, ran, fails = time.monotonic(), [], 0
    while timeout is None or time.monotonic() - start < timeout:
        if STOP.reason:
            raise Interrupted(STOP.reason)
        if janitor:
            tidy(study, url, grace_s=grace_s, retry_s=retry_s)
        got = claim(study, target, url, retry_s=retry_s)
        if got.done:
            break
        if got.trial is None:
            # Waiting on trials in flight: if one is a dead worker's and its launcher died
            # too, nobody else would reap it.
            tidy(study, url, grace_s=grace_s, retry_s=retry_s)
            time.sleep(poll_s)
            continue
        trial = got.trial
        try:
            with Heartbeat(study._storage, trial._trial_id, beat_interval(grace_s)):
                frozen = _run_trial(study, objective, trial)
        except (UpdateFinishedTrialError, ValueError):  # ValueError: "Cannot tell a FAIL trial"
            if not _reaped(study, trial):
                raise
            print(
                f"trial {trial.number} was reaped (no heartbeat seen for {grace_s:.0f}s): "
                "dropped, its retry is queued; claiming the next",
                flush=True,
            )
            continue
        ran.append(frozen)
        if on_trial:
            on_trial(frozen)
        fails = fails + 1 if frozen.state == TrialState.FAIL else 0
        if fails >= MAX_FAILS_IN_A_ROW:
            break
    return ran


def _run_trial(study: optuna.Study, objective, trial: optuna.Trial) -> optuna.trial.FrozenTrial:
    try:
        return study.tell(trial, _run_objective(objective, trial))
    except optuna.TrialPruned:
        return study.tell(trial, state=TrialState.PRUNED)
    except TrialFailed:
        if STOP.reason:  # the signal cut library code mid-call: its error is ours
            _stopped(study, trial, STOP.reason)
        return study.tell(trial, state=TrialState.FAIL)
    except Interrupted as e:
        _stopped(study, trial, str(e))
    except DeviceFault:
        enqueue_retry(study, study.tell(trial, state=TrialState.FAIL))
        raise  # this process's CUDA context is broken: its launcher replaces it


def _reaped(study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether the janitor finished this worker's trial: nobody else writes its state."""
    return study._storage.get_trial(trial._trial_id).state == TrialState.FAIL


def _stopped(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """A trial a signal stopped: FAIL with the signal as reason, its checkpoint retry queued."""
    trial.set_user_attr("fail_reason", reason)
    enqueue_retry(study, study.tell(trial, state=TrialState.FAIL))
    raise Interrupted(reason)
