"""Create or resume a study and run trials in this process until it holds ``n_trials``
finished ones.

``n_trials`` is the total the study should reach (COMPLETE + PRUNED), not a number to add:
rerunning the same command after an interruption trains only what is missing.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from fmnist.data import load_train
from fmnist.split import make_split
from fmnist.train import resolve_device
from search.errors import SearchError
from search.results.artifacts import artifacts_dir
from search.results.console import StudyProgress
from search.run import estimate
from search.run.objective import Objective
from search.run.options import RunOptions
from search.run.orphans import exit_with_launcher
from search.run.outcomes import Interrupted
from search.run.worker import MAX_FAILS_IN_A_ROW, signals_interrupt, work
from search.storage import DEFAULT_URL, StorageLost, open_storage, safe_url
from search.study import ResolvedStudy, objectives
from search.trials import finished_count

MISSING = "(not stored)"


def storage_url(study: ResolvedStudy, opts: RunOptions) -> str:
    return opts.storage or study.preset.storage or DEFAULT_URL


def target(study: ResolvedStudy, opts: RunOptions) -> int:
    return opts.n_trials or study.preset.n_trials


def split_fingerprint(study: ResolvedStudy, data_dir) -> str:
    _, labels = load_train(data_dir)
    return make_split(labels, study.preset.val_size, study.preset.split_seed).fingerprint


def open_study(study: ResolvedStudy, opts: RunOptions) -> optuna.Study:
    """Create the stored study (its attributes and baselines once) or resume it, refusing a
    resume whose preset would train trials differently from those already there."""
    url = storage_url(study, opts)
    storage = open_storage(url, retry_s=opts.storage_retry_s)
    name = opts.study_name or study.name
    seed = study.preset.sampler.seed if opts.seed is None else opts.seed
    seed += opts.worker_index or 0  # workers seeded alike would propose the same first points
    attrs = study.attrs(split_fingerprint(study, opts.data_dir))
    existing = name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=objectives.directions(study.objectives),
        load_if_exists=True,
        sampler=study.sampler(seed),
        pruner=study.pruning.optuna,
    )
    if existing:
        _check_resume(stored, attrs, safe_url(url))
        return stored
    for key, value in attrs.items():
        stored.set_user_attr(key, value)
    stored.set_user_attr("preset", study.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        stored.set_metric_names(study.objectives)
    # A baseline names what it sets; the rest takes the space's defaults (the report's
    # recipe), not a random draw, so that a baseline is one definite config.
    for params in study.baselines:
        stored.enqueue_trial(params, skip_if_exists=True)
    return stored


def _check_resume(stored: optuna.Study, attrs: dict[str, object], label: str) -> None:
    for key, want in attrs.items():
        have = stored.user_attrs.get(key, MISSING)
        if have != want:
            raise SearchError(
                f"study {stored.study_name!r} in {label} was made with {key}={have!r}, this "
                f"preset gives {key}={want!r}; resume with the original settings or pick a new "
                "--study-name"
            )


def timeout_of(study: ResolvedStudy, opts: RunOptions) -> float | None:
    """The search's seconds: ``--timeout``, else the preset's; None for no limit."""
    return opts.timeout if opts.timeout is not None else (study.preset.timeout or None)


def deadline_of(study: ResolvedStudy, opts: RunOptions) -> float | None:
    """The ``time.monotonic()`` at which a search started now reaches its timeout."""
    timeout = timeout_of(study, opts)
    return None if timeout is None else time.monotonic() + timeout


def after_trial(frozen, stored: optuna.Study, objective: Objective, progress) -> None:
    objective.drop_checkpoints(stored)
    if progress:
        progress.update(frozen)


def run(study: ResolvedStudy, opts: RunOptions) -> optuna.Study:
    """This process's share of the search: the whole of it, or one worker's."""
    timeout, deadline = timeout_of(study, opts), deadline_of(study, opts)
    exit_with_launcher()
    device = resolve_device(opts.device)
    if threads := os.environ.get("FMNIST_SEARCH_THREADS"):
        torch.set_num_threads(int(threads))  # K workers share the cores, not oversubscribe
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our console lines say it once
    logging.getLogger("optuna").setLevel(logging.ERROR)
    stored = open_study(study, opts)
    url, goal = storage_url(study, opts), target(study, opts)
    prefix = "" if opts.worker_index is None else f"[w{opts.worker_index}] "
    missing = goal - finished_count(stored)
    if missing <= 0:
        if opts.worker_index is None:
            print(
                f"study {stored.study_name!r} already has {goal} finished trials; "
                "raise --n-trials to run more"
            )
        return stored
    progress = None
    if opts.worker_index is None:
        print(
            f"study {stored.study_name!r}: {missing} of {goal} trials to run "
            f"(space {study.space.name}, {study.preset.epochs} epochs, pruner "
            f"{study.preset.pruner.name}, device {device})",
            flush=True,
        )
        seed = study.preset.sampler.seed if opts.seed is None else opts.seed
        kept = None
        try:
            found = estimate.measure(
                study, device=device, data_dir=opts.data_dir, trials=missing, seed=seed,
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
        data_dir=opts.data_dir,
        device=device,
        out_dir=Path(opts.out_dir),
        study_name=stored.study_name,
        split_fingerprint=stored.user_attrs["split_fingerprint"],
        prefix=prefix,
        artifacts=artifacts_dir(opts.artifacts, url, opts.out_dir),
        storage=url,
        trial_callbacks=opts.trial_callbacks,
        deadline=deadline,
        on_epoch=progress.epoch if progress else None,
        keep_checkpoints=opts.keep_checkpoints,
    )
    with signals_interrupt():
        try:
            ran = work(
                stored,
                objective,
                target=goal,
                url=url,
                timeout=timeout,
                grace_s=opts.grace_s,
                retry_s=opts.storage_retry_s,
                janitor=opts.worker_index is None,  # a launched worker's launcher reaps
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
