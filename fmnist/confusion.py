"""Which classes a trained model confuses, counted on its own validation split."""

from __future__ import annotations

from pathlib import Path

import torch

from fmnist.augment import to_input
from fmnist.classifier import Classifier, predict_logits
from fmnist.train import FitResult, train_set_on

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


@torch.no_grad()
def confusion_matrix(
    module: Classifier, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000
) -> torch.Tensor:
    """A 10x10 count matrix on the CPU: row = true class, column = predicted class (in eval
    mode, with the config's test-time augmentation, as ``train.evaluate`` scores it)."""
    module.eval()
    device = next(module.parameters()).device
    counts = torch.zeros(len(CLASSES) ** 2, dtype=torch.long, device=device)
    for i in range(0, images.shape[0], batch_size):
        x = to_input(images[i : i + batch_size].to(device), module.config.data)
        y = labels[i : i + batch_size].to(device)
        predicted = predict_logits(module, x, module.config.augment.tta_flip).argmax(-1)
        counts += torch.bincount(y * len(CLASSES) + predicted, minlength=len(CLASSES) ** 2)
    return counts.view(len(CLASSES), len(CLASSES)).cpu()


def validation_confusion(result: FitResult, data_dir: str | Path | None = None) -> torch.Tensor:
    """The confusion matrix of a fitted run on the validation split it was scored on.

    Raises ``ValueError`` for a full-train run, which has no validation split."""
    if result.split.val_idx.numel() == 0:
        raise ValueError("a full-train run has no validation split to count confusions on")
    images, labels = train_set_on(result.device, data_dir)
    idx = result.split.val_idx.to(images.device)
    return confusion_matrix(result.module, images[idx], labels[idx])
