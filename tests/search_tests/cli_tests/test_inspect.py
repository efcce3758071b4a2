from __future__ import annotations

import tomllib
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from fmnist.config import RunConfig, from_dict
from search.trials import ranked
from tests.testing import QuickStudy

pytestmark = pytest.mark.slow


def test_studies_counts_each_state(cli, quick_study: QuickStudy) -> None:
    study = quick_study.load()
    result = cli("studies", "--storage", quick_study.url)
    assert result.code == 0
    header, *rows = result.out.splitlines()
    assert header.split() == ["study", "complete", "pruned", "failed", "running", "best"]
    (row,) = [row.split() for row in rows if row.split()[0] == "quick"]
    count = Counter(t.state for t in study.get_trials())
    assert row[1:] == [
        str(count[TrialState.COMPLETE]),
        str(count[TrialState.PRUNED]),
        str(count[TrialState.FAIL]),
        str(count[TrialState.RUNNING]),
        f"{study.best_value:.4f}",
    ]


def test_studies_on_an_empty_storage(cli, tmp_path) -> None:
    result = cli("studies", "--storage", f"sqlite:///{tmp_path}/empty.db")
    assert result.code == 0
    assert result.out.startswith("no studies in sqlite:///")


def test_show_prints_top_trials_pruning_and_best_config(cli, quick_study: QuickStudy) -> None:
    study = quick_study.load()
    result = cli("show", "--study", "quick", "--storage", quick_study.url, "--top", 3)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "top 3 of study 'quick' (validation accuracy, last epoch):"
    best = ranked(study)
    assert [int(line.split()[0]) for line in lines[2:5]] == [t.number for t in best[:3]]

    done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    pruned = sum(t.state == TrialState.PRUNED for t in done)
    trained = sum(len(t.intermediate_values) for t in done)
    unpruned = study.user_attrs["epochs"] * len(done)
    assert trained < unpruned
    assert (
        f"pruning: {pruned} of {len(done)} finished trials pruned; {trained} epochs trained "
        f"vs {unpruned} without pruning ({1 - trained / unpruned:.0%} saved)"
    ) in lines

    heading = f"best config (trial {best[0].number}):"
    printed = result.out.split(heading + "\n", 1)[1]
    assert from_dict(RunConfig, tomllib.loads(printed)) == from_dict(
        RunConfig, best[0].user_attrs["config"]
    )


def test_show_a_study_with_no_trials(cli, tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="empty", storage=url)
    result = cli("show", "--study", "empty", "--storage", url)
    assert result.code == 0
    assert result.out.splitlines()[0] == "no completed trials yet"
    assert "best config" not in result.out and "pruning:" not in result.out
