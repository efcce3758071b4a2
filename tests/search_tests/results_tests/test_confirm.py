"""`confirm`: the top trials retrained with fresh seeds on the same split, ranked by their mean,
stored on the study, the winner exported; `show` prints the ranking and the gap."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from search.results.confirm import CONFIRMED, SEED_BASE

pytestmark = pytest.mark.slow  # trains a study and four confirmation runs (tiny, ~1 min)


def test_confirm_ranks_top_trials_by_mean_of_fresh_seeds(
    cli: Callable, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    preset = tiny_preset(tmp_path / "conf.toml", n_trials=3, epochs=1)
    url = f"sqlite:///{tmp_path}/s.db"
    run = cli("run", "--study", preset, "--storage", url, "--data-dir", data_dir, "--device", "cpu")
    assert run.code == 0, run.err
    assert "3/3 trials finished, best val_acc" in run.err  # study-level progress, no terminal

    r = cli(
        "confirm", "--study", "conf", "--top", 2, "--seeds", 2, "--storage", url,
        "--data-dir", data_dir, "--device", "cpu", "-o", tmp_path / "winner.toml",
        "--out", tmp_path / "confirm",
    )  # fmt: skip
    assert r.code == 0, r.err
    study = optuna.load_study(study_name="conf", storage=url)
    stored = study.user_attrs[CONFIRMED]
    assert stored["seeds"] == [SEED_BASE, SEED_BASE + 1]
    ranking = stored["ranking"]
    top2 = sorted(study.trials, key=lambda t: t.value or 0, reverse=True)[:2]
    assert {row["trial"] for row in ranking} == {t.number for t in top2}
    assert [row["mean"] for row in ranking] == sorted(
        (row["mean"] for row in ranking), reverse=True
    )
    for row in ranking:
        assert len(row["per_seed"]) == 2
        assert row["mean"] == pytest.approx(sum(row["per_seed"]) / 2)
        assert row["gap"] == pytest.approx(row["search_val_acc"] - row["mean"])
        assert row["sem"] == pytest.approx(abs(row["per_seed"][0] - row["per_seed"][1]) / 2)

    provenance = tomllib.loads((tmp_path / "winner.toml").read_text())["provenance"]
    assert provenance["trial"] == ranking[0]["trial"]
    assert provenance["confirmed_val_acc"] == pytest.approx(ranking[0]["mean"])

    show = cli("show", "--study", "conf", "--storage", url)
    assert "confirmed ranking of study 'conf'" in show.out
    assert f"{ranking[0]['gap']:+.4f}" in show.out


def test_confirm_refuses_zero_seeds(cli: Callable, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="empty", storage=url)
    r = cli("confirm", "--study", "empty", "--seeds", 0, "--storage", url)
    assert r.code == 2 and "--seeds: '0' is out of range" in r.error
