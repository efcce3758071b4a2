"""What a finished search prints last: the commands that naturally follow it, filled in with
the study and storage it used, each runnable as printed."""

from __future__ import annotations

import shlex

import optuna

from search.trials import ranked

PROGRAM = "fmnist-search"


def config_file(study_name: str) -> str:
    """Where the printed ``export`` writes the winner's config."""
    return f"best-{study_name}.toml"


def next_commands(
    study: optuna.Study,
    url: str,
    *,
    artifacts: str | None = None,
    data_dir: str | None = None,
    device: str = "auto",
) -> list[str]:
    """Shell lines, each a command and a ``# why`` comment: look at the study, take its
    winner out, train that on all 60k images and open the test set (one lockbox opening per
    seed). The commands that train take the run's ``data_dir`` and ``device``. Empty while
    the study has no complete trial."""
    if not ranked(study):
        return []
    name, config = study.study_name, config_file(study.study_name)
    stored = ["--artifacts", artifacts] if artifacts else []
    train = [*(["--data-dir", data_dir] if data_dir else []),
             *(["--device", device] if device != "auto" else [])]  # fmt: skip
    where = ["--storage", url]
    look = ["dashboard", *where, *stored]
    commands = [
        ("look at every trial, live", look),
        ("retrain the top 3 with fresh seeds, then write the winner",
         ["confirm", "--study", name, *where, *train, "-o", config]),
        ("or write the best trial as it stands",
         ["export", "--study", name, *where, "-o", config]),
        ("train it on all 60k images, score it once on the test set",
         ["retrain", config, "--seeds", "3", *where, *train, *stored]),
    ]  # fmt: skip
    return [f"  {shlex.join([PROGRAM, *argv])}  # {why}" for why, argv in commands]


def next_text(study: optuna.Study, url: str, **flags) -> str:
    """``next_commands`` under a ``next:`` heading; empty when there are none."""
    lines = next_commands(study, url, **flags)
    return "\n".join(["next:", *lines]) if lines else ""
