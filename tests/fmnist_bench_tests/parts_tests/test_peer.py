"""`bench --parts peer` on a tiny budget: both searches run for the same seconds, each selected
model is scored once on the test set, and the JSON holds both sides and their difference."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest


@pytest.mark.slow
def test_peer_sets_both_searches_side_by_side(
    cli, tmp_path: Path, tiny_study: Path, data_dir: Path
) -> None:
    out, work = tmp_path / "bench.json", tmp_path / "work"
    result = cli(
        "bench", "--parts", "peer", "--peer-seconds", 2, "--peer-study", tiny_study,
        "--peer-images", 2000, "--json", out, "--data-dir", data_dir, "--device", "cpu",
        "--work-dir", work,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "optuna recipe" in result.out and "ours - recipe" in result.out

    peer = json.loads(out.read_text())["peer"]
    theirs, ours = peer["theirs"], peer["ours"]
    for side in (theirs, ours):
        assert side["complete"] >= 1 and side["complete"] + side["pruned"] <= side["trials"]
        # A side may hold its n_trials before the seconds run out: no lower bound on wall time.
        assert side["wall_seconds"] > 0 and 0 < side["best_val_acc"] <= 1
        assert 0.1 < side["test_acc"] <= 1 and side["params"] > 0
    assert set(theirs["best_params"]) >= {"n_layers", "dropout", "n_units_l0"}
    assert theirs["val_images_scored"] == 128
    assert ours["study"] == "tiny" and ours["val_images_scored"] == 200
    assert "2000 images" in ours["test_of"]  # retrained on the images asked for, not the subset
    assert peer["test_acc_difference"] == pytest.approx(ours["test_acc"] - theirs["test_acc"])

    # --work-dir keeps our side's study, so `confirm` can run on it after the bench.
    kept = optuna.load_study(study_name="tiny", storage=f"sqlite:///{work}/peer-ours.db")
    assert len(kept.trials) == ours["trials"]
    assert (work / "peer-best.toml").is_file()
