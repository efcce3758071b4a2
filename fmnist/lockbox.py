"""The test set's single entry point.

A search never calls this: the 10k test images decide nothing but the final, reported score.
Every opening is recorded in the returned ``TestSet`` so results can state how often the
lockbox was opened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from fmnist.data import load_part

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestSet:
    images: torch.Tensor
    labels: torch.Tensor
    reason: str
    opened_at: float


def open_test_set(data_dir: str | Path | None = None, *, reason: str) -> TestSet:
    """Read the 10k test images for final evaluation. ``reason`` is logged and kept."""
    log.info("opening the test lockbox: %s", reason)
    images, labels = load_part("test", data_dir)
    return TestSet(images=images, labels=labels, reason=reason, opened_at=time.time())
