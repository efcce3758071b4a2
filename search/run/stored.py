"""The stored study a run works in, created with its plan, attributes and baselines, or
resumed when its preset would train trials as those already there do. Apart from the runner,
which trains, so that ``run``'s launcher opens the study without loading Lightning."""

from __future__ import annotations

import warnings

import optuna

from fmnist.data import load_train
from fmnist.split import make_split
from search.errors import SearchError
from search.run.plan import RunPlan, store, stored_plan
from search.storage import open_storage, safe_url
from search.study import ResolvedStudy, objectives
from search.trials import started_count

MISSING = "(not stored)"


def split_fingerprint(study: ResolvedStudy, data_dir) -> str:
    _, labels = load_train(data_dir)
    return make_split(labels, study.preset.val_size, study.preset.split_seed).fingerprint


def open_study(plan: RunPlan, url: str) -> tuple[optuna.Study, list[str]]:
    """Create the stored study (its plan, attributes and baselines once) or resume it,
    refusing a resume whose preset would train trials differently from those already there.
    Either way ``plan`` is stored for the workers to read. Returns the study and what the
    plan changes from the one stored before (``RunPlan.changes``)."""
    study = plan.study
    storage = open_storage(url, retry_s=plan.storage_retry_s)
    attrs = study.attrs(split_fingerprint(study, plan.data_dir))
    existing = plan.study_name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored = optuna.create_study(
        storage=storage,
        study_name=plan.study_name,
        directions=objectives.directions(study.objectives),
        load_if_exists=True,
        sampler=study.sampler(plan.seed),
        pruner=study.pruning.optuna,
    )
    if existing:
        _check_resume(stored, attrs, safe_url(url))
        stored.sampler = study.sampler(plan.sampler_seed(0, started_count(stored)))
        before = stored_plan(stored)
        store(stored, plan)
        return stored, plan.changes(before) if before else []
    store(stored, plan)
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
    return stored, []


def _check_resume(stored: optuna.Study, attrs: dict[str, object], label: str) -> None:
    """Every key that differs, with both values, in one line."""
    differ = [(k, stored.user_attrs.get(k, MISSING), v) for k, v in attrs.items()]
    differ = [(k, have, want) for k, have, want in differ if have != want]
    if differ:
        made = ", ".join(f"{k}={have!r}" for k, have, _ in differ)
        gives = ", ".join(f"{k}={want!r}" for k, _, want in differ)
        raise SearchError(
            f"study {stored.study_name!r} in {label} was made with {made}; this preset gives "
            f"{gives}; resume with the original settings or pick a new --study-name"
        )
