"""Confirm before the lockbox: retrain a study's top trials with fresh seeds on the same split
and rank them by mean validation accuracy.

A study's best single run is optimistic: its top trials usually lie closer together than one
run's noise (the standard error of one accuracy on 6,000 images is about 0.3 points), so the
search's winner is partly the luckiest seed. The confirmed ranking, stored on the study as
``confirmed``, is what ``export`` then takes, and what ``show`` and ``report`` print beside each
trial's search score.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import optuna

from fmnist.config import RunConfig, from_dict, replace, stretch
from search.errors import SearchError
from search.text import table
from search.trials import ranked

CONFIRMED = "confirmed"  # study user attribute
SEED_BASE = 1_000_000  # trial N of a search trains with seed N: these were never drawn


def budget_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> RunConfig:
    """The trial's config at the study's full epoch budget (a pruned trial's config asks for
    the budget it would have trained, not the epochs it got)."""
    config = from_dict(RunConfig, trial.user_attrs["config"])
    return replace(config, epochs=int(study.user_attrs.get("epochs", config.epochs)))


def confirm(
    study: optuna.Study,
    *,
    top: int,
    seeds: int,
    out_dir: Path,
    data_dir=None,
    device: str = "auto",
    progress=print,
    epochs: int | None = None,
) -> list[dict[str, Any]]:
    """Retrain the ``top`` complete trials ``seeds`` times each; the ranking, best first, also
    stored on the study. ``epochs``: confirm at that length, the schedule stretched to it
    (default: the study's epochs)."""
    if top < 1 or seeds < 1:
        raise SearchError(f"confirm: --top {top} --seeds {seeds}: both must be at least 1")
    trials = ranked(study)[:top]
    if not trials:
        raise SearchError(f"study {study.study_name!r} has no completed trial to confirm yet")
    # Deferred: Lightning, which `show` and `export` (reading the confirmed ranking) do not need.
    from fmnist.train import fit

    ranking = []
    for trial in trials:
        config = budget_config(study, trial)
        config = stretch(config, epochs) if epochs else config
        accs = []
        for k in range(seeds):
            seeded = replace(config, seed=SEED_BASE + k)
            result = fit(
                seeded,
                data_dir=data_dir,
                device=device,
                log_dir=out_dir / study.study_name,
                log_name=f"trial-{trial.number:04d}",
                log_version=f"seed-{seeded.seed}",
            )
            accs.append(result.val_acc)
            progress(
                f"confirm trial {trial.number}: seed {seeded.seed} val_acc {result.val_acc:.4f}"
            )
        mean = statistics.fmean(accs)
        sem = statistics.stdev(accs) / math.sqrt(len(accs)) if len(accs) > 1 else None
        ranking.append(
            {
                "trial": trial.number,
                "search_val_acc": trial.values[0],
                "mean": mean,
                "sem": sem,
                "per_seed": accs,
                "gap": trial.values[0] - mean,
            }
        )
    ranking.sort(key=lambda r: r["mean"], reverse=True)
    study.set_user_attr(
        CONFIRMED,
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seeds": [SEED_BASE + k for k in range(seeds)],
            "epochs": epochs or int(study.user_attrs.get("epochs", 0)),
            "ranking": ranking,
        },
    )
    return ranking


def confirmed(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(CONFIRMED)


def confirmed_table(study: optuna.Study) -> str:
    """The stored ranking with each trial's search score and the gap between the two."""
    found = confirmed(study)
    if not found:
        return (
            "not confirmed: `fmnist-search confirm --study NAME --top K --seeds N` retrains "
            "the top trials with fresh seeds before you open the test set"
        )
    rows = [
        [
            str(r["trial"]),
            f"{r['search_val_acc']:.4f}",
            f"{r['mean']:.4f}",
            "-" if r["sem"] is None else f"{r['sem']:.4f}",
            f"{r['gap']:+.4f}",
        ]
        for r in found["ranking"]
    ]
    title = (
        f"confirmed ranking of study {study.study_name!r} ({len(found['seeds'])} fresh seeds "
        f"each, {found['epochs']} epochs, same split; {found['at']}):"
    )
    return table(title, ["trial", "search", "mean", "std err", "search - mean"], rows)
