from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fmnist.config import ConfigError
from fmnist.data import load_train
from fmnist.split import fingerprint, make_split

# The default split's fingerprint. Every stored result carries it, so a change here means
# results from before and after validate on different images: change it only on purpose.
DEFAULT_FINGERPRINT = "ec094d7776908aa8"


@pytest.fixture(scope="module")
def labels(data_dir: Path) -> torch.Tensor:
    return load_train(data_dir)[1]


def test_validation_is_stratified(labels: torch.Tensor) -> None:
    split = make_split(labels, 6000, 0)
    assert torch.bincount(labels[split.val_idx], minlength=10).tolist() == [600] * 10
    assert torch.bincount(labels[split.train_idx], minlength=10).tolist() == [5400] * 10


def test_uneven_sizes_differ_by_at_most_one_per_class(labels: torch.Tensor) -> None:
    split = make_split(labels, 1005, 0, subset=997)
    for idx, total in [(split.val_idx, 1005), (split.train_idx, 997)]:
        counts = torch.bincount(labels[idx], minlength=10)
        assert counts.sum() == total and counts.max() - counts.min() <= 1


def test_train_and_validation_are_disjoint_and_cover_the_set(labels: torch.Tensor) -> None:
    split = make_split(labels, 6000, 0)
    train, val = set(split.train_idx.tolist()), set(split.val_idx.tolist())
    assert not train & val
    assert train | val == set(range(60000))
    assert len(val) == split.val_idx.numel()  # no index twice


def test_deterministic(labels: torch.Tensor) -> None:
    a, b = make_split(labels, 6000, 3, subset=2000), make_split(labels, 6000, 3, subset=2000)
    assert torch.equal(a.val_idx, b.val_idx) and torch.equal(a.train_idx, b.train_idx)
    assert a.fingerprint == b.fingerprint


def test_fingerprint_is_stable_and_follows_the_seed(labels: torch.Tensor) -> None:
    assert make_split(labels, 6000, 0).fingerprint == DEFAULT_FINGERPRINT
    other = make_split(labels, 6000, 1)
    assert other.fingerprint != DEFAULT_FINGERPRINT
    assert not torch.equal(other.val_idx, make_split(labels, 6000, 0).val_idx)
    assert make_split(labels, 5000, 0).fingerprint != DEFAULT_FINGERPRINT


def test_fingerprint_ignores_order() -> None:
    idx = torch.tensor([5, 3, 9, 1])
    assert fingerprint(idx) == fingerprint(torch.tensor([1, 3, 5, 9]))
    assert fingerprint(idx) != fingerprint(torch.tensor([1, 3, 5, 8]))


@pytest.mark.parametrize("subset", [10, 3000, 54000])
def test_subset_does_not_move_the_validation_split(labels: torch.Tensor, subset: int) -> None:
    full = make_split(labels, 6000, 0)
    part = make_split(labels, 6000, 0, subset=subset)
    assert torch.equal(part.val_idx, full.val_idx) and part.fingerprint == full.fingerprint
    assert part.train_idx.numel() == subset
    assert set(part.train_idx.tolist()) <= set(full.train_idx.tolist())
    counts = torch.bincount(labels[part.train_idx], minlength=10)
    assert counts.max() - counts.min() <= 1


def test_no_validation_puts_everything_in_training(labels: torch.Tensor) -> None:
    split = make_split(labels, 0, 0)
    assert split.val_idx.numel() == 0
    assert torch.equal(split.train_idx, torch.arange(60000))


@pytest.mark.parametrize(
    ("val_size", "subset", "key"),
    [(-1, 0, "val_size"), (60000, 0, "val_size"), (6000, 54001, "subset"), (6000, -1, "subset")],
)
def test_impossible_sizes_name_the_key(
    labels: torch.Tensor, val_size: int, subset: int, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"data.{key}"):
        make_split(labels, val_size, 0, subset=subset)
