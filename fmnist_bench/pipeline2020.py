"""The 2020 report's training pipeline, re-implemented to be timed beside ours: per-image PIL
transforms in a ``DataLoader`` at batch 64, fp32, a plain Lightning loop (Adam,
cross-entropy, no metrics), around the same ``fmnist.models`` network on the same images."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from fmnist.config import DataConfig, RunConfig
from fmnist.data import load_train
from fmnist.models import build_model
from fmnist.split import make_split
from fmnist.train import quiet_lightning, resolve_device, trainer_device
from fmnist_bench.clock import EpochClock, pace

BATCH = 64
# The name the JSON has always stored this pipeline's figures under.
JSON_NAME = "report"


class PilImages(Dataset):
    """What torchvision's ``FashionMNIST`` does per item: uint8 array -> PIL image ->
    transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i].numpy())), int(self.labels[i])


def transform(data: DataConfig) -> transforms.Compose:
    return transforms.Compose(
        [
            transforms.RandomRotation(7),
            transforms.RandomCrop(28, padding=3),
            transforms.ToTensor(),
            transforms.Normalize((data.mean,), (data.std,)),
        ]
    )


class Loop2020(pl.LightningModule):
    """The 2020 Lightning loop: fp32, Adam, cross-entropy and nothing else, so the baseline
    carries no cost of ours."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self.model = build_model(config.model)
        self.lr = config.optim.lr

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def plain_trainer(device: str, **options: Any) -> pl.Trainer:
    """A Lightning ``Trainer`` with nothing of ours: no logger, checkpoints, progress bar or
    model summary; ``options`` as ``Trainer`` takes them."""
    return pl.Trainer(
        **trainer_device(device),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )


def throughput(
    config: RunConfig,
    *,
    images: int,
    epochs: int,
    device: str = "auto",
    data_dir=None,
    workers: int = 0,
) -> dict[str, Any]:
    """Training images/s of the 2020 pipeline on the training images
    ``fmnist_bench.trainer.throughput`` uses."""
    quiet_lightning()
    device = resolve_device(device)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    all_images, labels = load_train(data_dir)
    idx = make_split(labels, 0, config.data.split_seed, images).train_idx  # as fit(full_train)
    loader = DataLoader(
        PilImages(all_images[idx], labels[idx], transform(config.data)),
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device != "cpu",
    )
    clock = EpochClock()
    trainer = plain_trainer(device, max_epochs=epochs, precision="32-true", callbacks=[clock])
    trainer.fit(Loop2020(config), train_dataloaders=loader)
    return {
        "pipeline": JSON_NAME,
        "batch_size": BATCH,
        "precision": "32-true",
        "channels_last": False,
        "loader_workers": workers,
    } | pace(images, clock.train_seconds)
