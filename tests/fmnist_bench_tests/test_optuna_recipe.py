"""Optuna's Lightning recipe, re-implemented: its space, its split and its scoring, on a tiny
budget."""

from __future__ import annotations

from pathlib import Path

import optuna
import torch

from fmnist_bench import optuna_recipe


def test_split_is_random_disjoint_and_keeps_one_scored_batch(data_dir: Path) -> None:
    data = optuna_recipe.split(data_dir, images=2000, seed=1)
    assert len(data.train) + len(data.val) == 2000
    assert len(data.val) == 1280  # 10% of its batches is one batch of 128
    again = optuna_recipe.split(data_dir, images=2000, seed=1)
    assert data.val.labels.equal(again.val.labels)
    full = optuna_recipe.split(data_dir, seed=0)
    assert (len(full.train), len(full.val)) == (55_000, 5_000)
    x, y = full.train[0]
    assert x.shape == (1, 28, 28) and 0 <= x.min() <= x.max() <= 1 and 0 <= y < 10


def test_search_samples_the_recipes_space_and_scores_its_best_model(data_dir: Path) -> None:
    done = optuna_recipe.search(seconds=3, device="cpu", data_dir=data_dir, images=2000)
    trials = [t for t in done.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert trials and done.wall_seconds >= 3
    for t in trials:
        n = t.params["n_layers"]
        assert 1 <= n <= 3 and 0.2 <= t.params["dropout"] <= 0.5
        assert set(t.params) == {"n_layers", "dropout"} | {f"n_units_l{i}" for i in range(n)}
        assert all(4 <= t.params[f"n_units_l{i}"] <= 128 for i in range(n))
        assert len(t.intermediate_values) == optuna_recipe.EPOCHS
    assert isinstance(done.study.pruner, optuna.pruners.MedianPruner)
    assert done.val_images_scored == 128
    best = done.models[done.best.number]
    widths = [m.out_features for m in best.net if isinstance(m, torch.nn.Linear)]
    n = done.best.params["n_layers"]
    assert widths == [done.best.params[f"n_units_l{i}"] for i in range(n)] + [10]
    acc = optuna_recipe.test_accuracy(best, data_dir)
    assert 0.3 < acc <= 1  # a trained MLP, not chance
