"""Which classes a trained model confuses, counted on its own validation split."""

from __future__ import annotations

from pathlib import Path

import torch

from fmnist.train import FitResult, confusion_matrix, train_set_on

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def validation_confusion(result: FitResult, data_dir: str | Path | None = None) -> torch.Tensor:
    """The confusion matrix of a fitted run on the validation split it was scored on: the
    counts its last validation pass made on the device, or, when this fit validated nothing
    (it resumed a finished run), a pass over the split now.

    Raises ``ValueError`` for a full-train run, which has no validation split."""
    if result.split.val_idx.numel() == 0:
        raise ValueError("a full-train run has no validation split to count confusions on")
    if result.val_confusion is not None:
        return result.val_confusion
    images, labels = train_set_on(result.device, data_dir)
    idx = result.split.val_idx.to(images.device)
    return confusion_matrix(result.module, images[idx], labels[idx])
