from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fmnist.config import RunConfig
from fmnist.confusion import CLASSES, confusion_matrix, validation_confusion
from fmnist.train import evaluate, fit, train_set_on


@pytest.mark.slow  # trains for more than a few seconds
def test_the_validation_confusion_agrees_with_the_validation_score(
    tiny_config: RunConfig, data_dir: Path
) -> None:
    result = fit(tiny_config, data_dir=data_dir, device="cpu")
    matrix = validation_confusion(result, data_dir)

    assert matrix.shape == (len(CLASSES), len(CLASSES)) and matrix.dtype == torch.long
    # the split is stratified: each true class (row) holds the same number of images
    per_class = tiny_config.data.val_size // len(CLASSES)
    assert matrix.sum(1).tolist() == [per_class] * len(CLASSES)
    images, labels = train_set_on("cpu", data_dir)
    val_images, val_labels = images[result.split.val_idx], labels[result.split.val_idx]
    accuracy = matrix.diag().sum().item() / matrix.sum().item()
    assert accuracy == pytest.approx(evaluate(result.module, val_images, val_labels))


@pytest.mark.slow  # trains for more than a few seconds
def test_fit_counts_confusions_on_the_device_without_a_second_pass(
    tiny_config: RunConfig, data_dir: Path
) -> None:
    images, labels = train_set_on("cpu", data_dir)
    test = images[-300:], labels[-300:]
    result = fit(tiny_config, data_dir=data_dir, device="cpu", test=test)
    forwards = []
    result.module.register_forward_pre_hook(lambda *_: forwards.append(1))

    matrix = validation_confusion(result, data_dir)
    assert forwards == []  # the counts came from training's own validation pass

    val = result.split.val_idx
    assert torch.equal(matrix, confusion_matrix(result.module, images[val], labels[val]))
    assert forwards  # the hook sees a second pass when there is one
    assert torch.equal(result.test_confusion, confusion_matrix(result.module, *test))
    assert result.test_acc == pytest.approx(evaluate(result.module, *test))


def test_rows_are_true_classes_and_columns_predictions(tiny_config: RunConfig) -> None:
    from fmnist.classifier import Classifier

    class AlwaysBag(Classifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(x.shape[0], len(CLASSES))
            logits[:, CLASSES.index("Bag")] = 1.0
            return logits

    module = AlwaysBag(tiny_config, steps_per_epoch=1)
    labels = torch.tensor([0, 0, 6, 8])
    matrix = confusion_matrix(module, torch.zeros(4, 28, 28, dtype=torch.uint8), labels)
    bag = CLASSES.index("Bag")
    assert matrix[:, bag].tolist() == [2, 0, 0, 0, 0, 0, 1, 0, 1, 0]
    assert matrix.sum().item() == 4
