"""`fmnist-bench run --parts peer` on a tiny budget: both searches run until the same seconds
are spent, each selected model is scored once on the test set, and what the part prints and
writes is what the searches and the retrain left behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest

from search.study import lockbox

# Enough for one two-epoch trial of the tiny study to complete on a busy 2-core machine (10 s
# and 15 s each finished no trial of ours under a load of 14 and 21 on 2 cores).
SECONDS = 20


@pytest.mark.slow
def test_peer_sets_both_searches_side_by_side(
    bench, tmp_path: Path, tiny_preset, data_dir: Path
) -> None:
    # More trials than the seconds allow: the deadline, not n_trials, stops our side, as
    # Optuna's `optimize(timeout=...)` stops theirs.
    study = tiny_preset(tmp_path / "tiny.toml", n_trials=500, subset=256, val_size=200)
    out, work = tmp_path / "bench.json", tmp_path / "work"
    result = bench(
        "run", "--parts", "peer", "--peer-seconds", SECONDS, "--peer-study", study,
        "--peer-images", 2000, "--json", out, "--data-dir", data_dir, "--device", "cpu",
        "--work-dir", work,
    )  # fmt: skip
    assert result.code == 0, result.err
    peer = json.loads(out.read_text())["peer"]
    theirs, ours = peer["theirs"], peer["ours"]

    # Equal cost: each side searched for at least the budget, and neither ran on for long
    # after it (ours stops a running trial at the deadline's epoch end; theirs finishes the
    # trial it started; nothing starts after it).
    for side in (theirs, ours):
        assert side["wall_seconds"] >= SECONDS
    ratio = ours["wall_seconds"] / theirs["wall_seconds"]
    assert 1 / 3 < ratio < 3, (ours["wall_seconds"], theirs["wall_seconds"])

    # Our side as the storage holds it (--work-dir keeps it, so `confirm` can run on it).
    kept = optuna.load_study(study_name="tiny", storage=f"sqlite:///{work}/peer-ours.db")
    states = [t.state for t in kept.trials]
    assert len(kept.trials) == ours["trials"] < 500
    assert states.count(optuna.trial.TrialState.COMPLETE) == ours["complete"] >= 1
    assert kept.best_trial.number == ours["best_trial"]
    assert ours["best_val_acc"] == pytest.approx(kept.best_value)
    # Its test score is the retrain's, opened once and counted on the study.
    (card,) = work.glob("peer-retrain/**/model_card.json")
    assert ours["test_acc"] == json.loads(card.read_text())["test_acc"]["mean"]
    (opening,) = lockbox.openings(kept)
    assert opening["reason"].startswith("retrain seed")
    assert "2000 images" in ours["test_of"]  # retrained on the images asked for, not the subset

    assert theirs["complete"] >= 1 and theirs["complete"] + theirs["pruned"] <= theirs["trials"]
    assert set(theirs["best_params"]) >= {"n_layers", "dropout", "n_units_l0"}
    assert theirs["val_images_scored"] == 128 and ours["val_images_scored"] == 200
    for side in (theirs, ours):
        assert 0.1 < side["test_acc"] <= 1 and side["params"] > 0

    # What the part prints is what it wrote.
    rows = {
        line.split()[0]: line.split()
        for line in result.out.splitlines()
        if line.strip().startswith(("optuna", "ours,"))
    }
    assert rows["optuna"][-2] == f"{theirs['test_acc']:.4f}"
    assert rows["ours,"][-2] == f"{ours['test_acc']:.4f}"
    printed = re.search(r"ours - recipe: ([+-][\d.]+) points", result.out)
    assert printed and float(printed[1]) == pytest.approx(
        100 * peer["test_acc_difference"], abs=0.005
    )
