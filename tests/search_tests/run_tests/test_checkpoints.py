"""The checkpoint policy: written at the pruner's rungs and at the end, never at the epoch a
trial is pruned at, and kept only for the study's K most accurate finished trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from search.run.objective import Objective, checkpoint_epochs
from search.run.worker import work
from search.study import resolve
from tests.testing import load, run_args, run_process, smallest


@pytest.mark.parametrize(
    "pruner, epochs, written",
    [
        (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3), 9,
         {1, 3, 8}),
        (optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2,
                                                min_early_stopping_rate=1), 10, {2, 4, 8, 9}),
        (optuna.pruners.HyperbandPruner(min_resource="auto", max_resource=9), 3, {0, 1, 2}),
        (optuna.pruners.MedianPruner(), 3, {0, 1, 2}),
        (optuna.pruners.NopPruner(), 2, {0, 1}),
    ],
)  # fmt: skip
def test_checkpoints_are_written_at_rungs_and_at_the_end(pruner, epochs, written) -> None:
    assert checkpoint_epochs(pruner, epochs) == written


def test_the_epoch_a_trial_is_pruned_at_writes_no_checkpoint(tmp_path: Path) -> None:
    study = resolve(str(smallest(tmp_path, 2)))
    url = f"sqlite:///{tmp_path}/study.db"
    # Epoch 0 is past the warm-up of none, so it goes on (and is saved); epoch 1 is pruned.
    pruner = optuna.pruners.ThresholdPruner(lower=1.1, n_warmup_steps=1)
    stored = optuna.create_study(storage=url, study_name="ckpt", pruner=pruner)
    objective = Objective(
        study, data_dir=None, device="cpu", out_dir=tmp_path, study_name="ckpt",
        split_fingerprint="not checked here", keep_checkpoints=5,
    )  # fmt: skip
    (trial,) = work(stored, objective, target=1, url=url)
    assert trial.state == TrialState.PRUNED and trial.user_attrs["trained_epochs"] == [0, 1]
    path = objective.ckpt_path(trial.number)
    history = torch.load(path, map_location="cpu", weights_only=False)["history"]
    assert [h["epoch"] for h in history] == [0]  # epoch 1 was pruned, and not written
    assert trial.user_attrs["ckpt_bytes"] == path.stat().st_size  # one write


@pytest.mark.slow
def test_only_the_top_k_finished_trials_keep_their_checkpoints(tmp_path, study_name) -> None:
    url = f"sqlite:///{tmp_path}/study.db"
    args = run_args(smallest(tmp_path), url, study_name, tmp_path, "--n-trials", "3")
    r = run_process(*args, "--keep-checkpoints", "1")
    assert r.code == 0, r.log
    trials = load(url, study_name).trials
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    kept = sorted(tmp_path.glob(f"runs/ckpt/{study_name}/*/last.ckpt"))
    assert [p.parent.name for p in kept] == [f"trial-{best.number:04d}"]
    assert all(t.user_attrs["ckpt_bytes"] > 0 for t in trials)
