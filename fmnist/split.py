"""The honest split: a stratified validation set carved from the 60k training images.

Stratified so that every class weighs the same in the score a search optimises; seeded and
independent of the training subset, so every trial of a study validates on the same images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from fmnist.config import ConfigError

NUM_CLASSES = 10
NO_SPLIT = "no validation split"  # the fingerprint of a run that trains on every image


@dataclass(frozen=True)
class Split:
    train_idx: torch.Tensor  # int64 indices into the 60k training set
    val_idx: torch.Tensor
    fingerprint: str  # hash of the validation indices (or NO_SPLIT); travels with every result


def fingerprint(val_idx: torch.Tensor) -> str:
    data = torch.sort(val_idx.to(torch.int64)).values.numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _per_class(total: int) -> list[int]:
    base, extra = divmod(total, NUM_CLASSES)
    return [base + (1 if c < extra else 0) for c in range(NUM_CLASSES)]


def make_split(labels: torch.Tensor, val_size: int, seed: int, subset: int = 0) -> Split:
    """Validation: ``val_size`` images, equal per class. Training: the rest, or a stratified
    ``subset`` of it. ``val_size=0`` puts every image in training (the retrain case)."""
    labels = labels.cpu()
    n = labels.numel()
    if not 0 <= val_size < n:
        raise ConfigError(f"data.val_size must be in [0, {n}), got {val_size}")
    g = torch.Generator().manual_seed(seed)
    by_class = [torch.nonzero(labels == c).flatten() for c in range(NUM_CLASSES)]
    shuffled = [idx[torch.randperm(idx.numel(), generator=g)] for idx in by_class]
    val_counts = _per_class(val_size)
    val = torch.cat([s[:k] for s, k in zip(shuffled, val_counts, strict=True)])
    rest = [s[k:] for s, k in zip(shuffled, val_counts, strict=True)]
    available = sum(r.numel() for r in rest)
    if subset < 0 or subset > available:
        raise ConfigError(f"data.subset must be in [0, {available}] with this split, got {subset}")
    if subset:
        # Drawn with a generator of its own so that the subset does not move the split.
        gs = torch.Generator().manual_seed(seed + 1)
        train = torch.cat(
            [
                r[torch.randperm(r.numel(), generator=gs)[:k]]
                for r, k in zip(rest, _per_class(subset), strict=True)
            ]
        )
    else:
        train = torch.cat(rest)
    return Split(
        train_idx=torch.sort(train).values,
        val_idx=torch.sort(val).values,
        fingerprint=fingerprint(val) if val_size else NO_SPLIT,
    )
