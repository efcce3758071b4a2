"""Create or resume a study and run trials in this process until it holds ``n_trials``
finished ones.

``n_trials`` is the total the study should reach (COMPLETE + PRUNED), not a number to add:
rerunning the same command after an interruption trains only what is missing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from fmnist.train import resolve_device
from search.errors import SearchError
from search.results.console import StudyProgress
from search.run import estimate
from search.run.objective import Objective
from search.run.orphans import exit_with_launcher
from search.run.outcomes import Interrupted
from search.run.plan import RunPlan
from search.run.stored import open_study
from search.run.worker import MAX_FAILS_IN_A_ROW, signals_interrupt, work
from search.storage import StorageLost
from search.trials import finished_count


def after_trial(frozen, stored: optuna.Study, objective: Objective, progress) -> None:
    objective.drop_checkpoints(stored)
    if progress:
        progress.update(frozen)


def run(
    plan: RunPlan,
    url: str,
    stored: optuna.Study | None = None,
    *,
    index: int | None = None,
    device: str | None = None,
    trial_callbacks: Callable[[int], Any] | None = None,
) -> optuna.Study:
    """This process's share of the search ``plan`` describes: the whole of it, or worker
    ``index``'s on ``device`` (default: the plan's) in the study it joined (``stored``)."""
    study, timeout, deadline = plan.study, plan.seconds_left(), plan.monotonic_deadline()
    exit_with_launcher()
    device = resolve_device(device or plan.placement.device)
    if threads := os.environ.get("FMNIST_SEARCH_THREADS"):
        torch.set_num_threads(int(threads))  # K workers share the cores, not oversubscribe
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our console lines say it once
    logging.getLogger("optuna").setLevel(logging.ERROR)
    if stored is None:
        stored, _ = open_study(plan, url)
    goal = plan.n_trials
    prefix = "" if index is None else f"[w{index}] "
    missing = goal - finished_count(stored)
    if missing <= 0:
        if index is None:
            print(
                f"study {stored.study_name!r} already has {goal} finished trials; "
                "raise --n-trials to run more"
            )
        return stored
    progress = None
    if index is None:
        print(
            f"study {stored.study_name!r}: {missing} of {goal} trials to run "
            f"(space {study.space.name}, {study.preset.epochs} epochs, pruner "
            f"{study.preset.pruner.name}, device {device})",
            flush=True,
        )
        kept = None
        try:
            found = estimate.measure(
                study, device=device, data_dir=plan.data_dir, trials=missing, seed=plan.seed,
                timeout=timeout,
            )  # fmt: skip
        except Exception as e:  # the trial that trains this config fails and says why
            print(f"estimate: the first config did not train ({type(e).__name__})", flush=True)
        else:
            print("\n".join(found.lines()), flush=True)
            kept = found.epochs * found.saving.kept
        progress = StudyProgress(stored, goal, deadline, epochs_per_trial=kept)
    objective = Objective(
        study,
        data_dir=plan.data_dir,
        device=device,
        out_dir=Path(plan.out_dir),
        study_name=stored.study_name,
        split_fingerprint=stored.user_attrs["split_fingerprint"],
        prefix=prefix,
        artifacts=Path(plan.artifacts),
        storage=url,
        trial_callbacks=trial_callbacks,
        deadline=deadline,
        on_epoch=progress.epoch if progress else None,
        keep_checkpoints=plan.keep_checkpoints,
    )
    with signals_interrupt():
        try:
            ran = work(
                stored,
                objective,
                target=goal,
                url=url,
                timeout=timeout,
                grace_s=plan.grace_s,
                retry_s=plan.storage_retry_s,
                janitor=index is None,  # a launched worker's launcher reaps
                on_trial=lambda frozen: after_trial(frozen, stored, objective, progress),
            )
        except Interrupted as e:
            raise SearchError(
                f"{e}; the running trial is marked FAIL and will resume from its last "
                "checkpoint, every finished trial is kept: rerun the same command to finish "
                "the study"
            ) from None
        except StorageLost as e:
            raise SearchError(str(e)) from None
        finally:
            if progress:
                progress.close()
    tail = ran[-MAX_FAILS_IN_A_ROW:]
    if len(tail) == MAX_FAILS_IN_A_ROW and all(t.state == TrialState.FAIL for t in tail):
        raise SearchError(
            f"{len(tail)} trials failed in a row, the last with: "
            f"{tail[-1].user_attrs.get('fail_reason')}; fix that and rerun"
        )
    return stored
