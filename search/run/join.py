"""A worker joins a study with its storage URL and name alone: the plan ``run`` stored on the
study (``search.run.plan``) says everything else. Its launcher adds only where it runs: its
index and device."""

from __future__ import annotations

import sys

import optuna

from search.errors import SearchError
from search.run.plan import RunPlan, stored_plan
from search.storage import RETRY_S, open_storage, safe_url
from search.trials import started_count


def command(url: str, study_name: str, index: int, device: str) -> list[str]:
    """``fmnist-search worker`` as worker ``index`` on ``device``, a child of this Python."""
    return [
        sys.executable, "-m", "search.cli", "worker", "--storage", url,
        "--study-name", study_name, "--worker-index", str(index), "--device", device,
    ]  # fmt: skip


def join(url: str, study_name: str, index: int) -> tuple[RunPlan, optuna.Study]:
    """The stored plan, and the study as worker ``index`` works on it: its sampler seeded
    apart from the other workers' and earlier runs' (``RunPlan.sampler_seed``), its storage
    retried for the plan's seconds."""
    # The default retry until the plan is read: a blip at start-up must not end a worker.
    storage = open_storage(url, retry_s=RETRY_S)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        plan = stored_plan(optuna.load_study(study_name=study_name, storage=storage))
    except KeyError:
        plan = None
    if plan is None:
        raise SearchError(
            f"study {study_name!r} in {safe_url(url)} has no run plan to join (or one of another "
            "version); a worker joins a study that this version's `fmnist-search run` started"
        )
    storage.budget_s = plan.storage_retry_s
    study = plan.study
    stored = optuna.load_study(study_name=study_name, storage=storage, pruner=study.pruning.optuna)
    stored.sampler = study.sampler(plan.sampler_seed(index, started_count(stored)))
    return plan, stored
