"""Optuna's published PyTorch Lightning recipe for Fashion-MNIST, re-implemented in our own code
from its published facts, to set our search beside it on one machine for one wall time.

The recipe: an MLP of 1-3 layers of 4-128 units each (log scale) with one dropout rate in
[0.2, 0.5], Adam at its defaults, batch 128, 10 epochs, a random 55k/5k split of the training
images of which 10% of the validation batches are scored each epoch (``limit_val_batches =
0.1``), Optuna's ``MedianPruner`` through Lightning's pruning callback, and a timeout. Items are
decoded per image (uint8 -> PIL -> ``ToTensor``), as torchvision's ``FashionMNIST`` hands them
out. One split, drawn once from ``seed``, serves every trial.

The recipe has no retraining step: the model it selects is its best trial's, as that trial
trained it (on the 55k images); ``test_accuracy`` scores that model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import torch
import torch.nn.functional as F
from optuna_integration import PyTorchLightningPruningCallback
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from fmnist.data import load_train
from fmnist.lockbox import open_test_set
from fmnist.train import quiet_lightning, resolve_device
from fmnist_bench.pipeline2020 import PilImages, plain_trainer

EPOCHS = 10
BATCH = 128
VAL_FRACTION = 5_000 / 60_000
LIMIT_VAL_BATCHES = 0.1
LAYERS = (1, 3)
UNITS = (4, 128)
DROPOUT = (0.2, 0.5)


class MLP(pl.LightningModule):
    def __init__(self, widths: Sequence[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        inputs = 28 * 28
        for width in widths:
            layers += [nn.Linear(inputs, width), nn.ReLU(), nn.Dropout(dropout)]
            inputs = width
        layers.append(nn.Linear(inputs, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.net(x), dim=1)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.nll_loss(self(x), y)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


@dataclass(frozen=True)
class Split:
    train: PilImages
    val: PilImages


def split(data_dir=None, *, images: int | None = None, seed: int = 0) -> Split:
    """A random train/validation split of ``images`` training images (default all 60k:
    55k/5k; a small number only for quick checks), decoded per item."""
    x, y = load_train(data_dir)
    n = min(images or len(y), len(y))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    # At least the batches whose 10% is one batch, which Lightning requires of a small split.
    n_val = max(round(n * VAL_FRACTION), BATCH * round(1 / LIMIT_VAL_BATCHES))
    val, train = order[:n_val], order[n_val:]
    to_tensor = transforms.ToTensor()
    return Split(PilImages(x[train], y[train], to_tensor), PilImages(x[val], y[val], to_tensor))


@dataclass
class Search:
    """A finished search: the study, its wall time and the model of every finished trial
    (small MLPs), so that the selected one can be scored."""

    study: optuna.Study
    wall_seconds: float
    models: dict[int, MLP]
    train_images: int
    val_images_scored: int

    @property
    def best(self) -> optuna.trial.FrozenTrial:
        return self.study.best_trial

    def count(self, state: optuna.trial.TrialState) -> int:
        return sum(t.state == state for t in self.study.trials)


def search(
    *,
    seconds: float,
    device: str = "auto",
    data_dir=None,
    images: int | None = None,
    seed: int = 0,
) -> Search:
    """The recipe's study, stopped after ``seconds`` as ``study.optimize(timeout=...)`` stops."""
    quiet_lightning()
    device = resolve_device(device)
    data = split(data_dir, images=images, seed=seed)
    train = DataLoader(data.train, batch_size=BATCH, shuffle=True)
    val = DataLoader(data.val, batch_size=BATCH)
    models: dict[int, MLP] = {}

    def objective(trial: optuna.Trial) -> float:
        n_layers = trial.suggest_int("n_layers", *LAYERS)
        dropout = trial.suggest_float("dropout", *DROPOUT)
        widths = [trial.suggest_int(f"n_units_l{i}", *UNITS, log=True) for i in range(n_layers)]
        model = MLP(widths, dropout)
        trainer = plain_trainer(
            device,
            max_epochs=EPOCHS,
            limit_val_batches=LIMIT_VAL_BATCHES,
            callbacks=[PyTorchLightningPruningCallback(trial, monitor="val_acc")],
        )
        trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
        models[trial.number] = model
        return trainer.callback_metrics["val_acc"].item()

    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(),
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    start = time.perf_counter()
    study.optimize(objective, timeout=seconds)
    wall = time.perf_counter() - start
    scored = min(len(data.val), max(1, int(len(val) * LIMIT_VAL_BATCHES)) * BATCH)
    return Search(study, wall, models, len(data.train), scored)


@torch.no_grad()
def test_accuracy(model: MLP, data_dir: str | Path | None = None) -> float:
    """The selected model's accuracy on the 10k test images, opened once."""
    test = open_test_set(data_dir, reason="bench peer: Optuna recipe's selected model")
    model.eval().cpu()
    x = test.images.float().div(255).unsqueeze(1)  # what ToTensor makes of a uint8 image
    predicted = torch.cat([model(chunk).argmax(1) for chunk in x.split(1000)])
    return (predicted == test.labels).float().mean().item()


def summary(done: Search, test_acc: float) -> dict[str, Any]:
    return {
        "recipe": "Optuna's PyTorch Lightning Fashion-MNIST example, re-implemented",
        "trials": len(done.study.trials),
        "complete": done.count(optuna.trial.TrialState.COMPLETE),
        "pruned": done.count(optuna.trial.TrialState.PRUNED),
        "wall_seconds": done.wall_seconds,
        "best_trial": done.best.number,
        "best_params": done.best.params,
        "best_val_acc": done.best.value,
        "val_images_scored": done.val_images_scored,
        "test_acc": test_acc,
        "test_of": f"the best trial's model as its search trained it ({done.train_images} images)",
    }
