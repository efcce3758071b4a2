"""A trial's complete run config as TOML, with its provenance; readable without Optuna."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from fmnist.config import dump_toml
from search.errors import SearchError
from search.results.confirm import budget_config, confirmed
from search.storage.reference import reference
from search.study.objectives import COSTS, front
from search.trials import REJECTED, epoch_accuracies, ranked, was_rejected


def chosen_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    if number is None:
        if found := confirmed(study):  # seeds beat a single run's luck
            return chosen_trial(study, found["ranking"][0]["trial"])
        best = ranked(study)
        if not best:
            raise SearchError(f"study {study.study_name!r} has no completed trial to export yet")
        return best[0]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise SearchError(f"study {study.study_name!r} has no trial {number}")
    trial = trials[number]
    if (
        trial.state not in (TrialState.COMPLETE, TrialState.PRUNED)
        or "config" not in trial.user_attrs
    ):
        raise SearchError(f"trial {number} is {trial.state.name}; export a finished trial")
    if was_rejected(trial):
        raise SearchError(f"trial {number} was never trained: {trial.user_attrs[REJECTED]}")
    return trial


def _train_images(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> int:
    """Images the trial trained on: stored by a complete trial; else the study's split."""
    if "train_images" in trial.user_attrs:
        return int(trial.user_attrs["train_images"])
    from fmnist.data import FILES  # torch: only for a trial that did not store its count

    attrs = study.user_attrs
    return int(attrs.get("subset") or FILES["train"][1].shape[0] - attrs.get("val_size", 0))


def export(
    study: optuna.Study, number: int | None, path: Path, storage_url: str | None = None
) -> Path:
    """Write the trial's config at the study's full epoch budget, with its provenance; the
    default trial is the confirmed winner (``search.results.confirm``), else the best."""
    trial = chosen_trial(study, number)
    config = budget_config(study, trial)
    curve = epoch_accuracies(trial)
    val_acc = trial.values[0] if trial.values else curve[max(curve)]
    provenance = {
        "study": study.study_name,
        "trial": trial.number,
        "state": trial.state.name,
        "val_acc": val_acc,
        "best_val_acc": trial.user_attrs.get("best_val_acc", val_acc) or 0.0,
        # How val_acc was trained, for the model card's like-with-like gap.
        "val_epochs": len(curve),
        "val_train_images": _train_images(study, trial),
        "split_fingerprint": study.user_attrs.get("split_fingerprint", ""),
        "space": study.user_attrs.get("space", ""),
        "space_version": study.user_attrs.get("space_version", 0),
        "storage": reference(storage_url),
        "git_commit": trial.user_attrs.get("git_commit", ""),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # What it costs, as the search measured it, to set beside accuracy (a Pareto front).
    provenance |= {k: trial.user_attrs[k] for k in COSTS if k in trial.user_attrs}
    for row in (confirmed(study) or {}).get("ranking", []):
        if row["trial"] == trial.number:
            provenance |= {
                "confirmed_val_acc": row["mean"],
                "confirmed_seeds": len(row["per_seed"]),
                "confirmed_epochs": confirmed(study)["epochs"],
            }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_toml(config, provenance))
    return path


def export_front(study: optuna.Study, folder: Path, storage_url: str | None = None) -> list[Path]:
    """One config per point of the study's front (``search.study.objectives.front``),
    cheapest first, as ``trial-NNNN.toml`` in ``folder``; each is what ``export --trial N``
    writes."""
    trials = front(study)
    if not trials:
        raise SearchError(
            f"study {study.study_name!r} has no complete feasible trial to export yet"
        )
    return [
        export(study, t.number, folder / f"trial-{t.number:04d}.toml", storage_url) for t in trials
    ]
