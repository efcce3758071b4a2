"""Augmentation of a whole batch at once, on whatever device the batch lives on.

Every random parameter is drawn per sample as a tensor; translation, rotation and flip fold
into one affine grid sample, so a batch costs a few kernels and no per-image Python (the
report's per-image PIL transforms cost ~190 us an image on one core).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fmnist.config import AugmentConfig, DataConfig


def to_input(x: torch.Tensor, data: DataConfig) -> torch.Tensor:
    """uint8 (N, 28, 28) or (N, 1, 28, 28) -> normalised float (N, 1, 28, 28)."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return (x.float() / 255.0 - data.mean) / data.std


def _geometric(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    n, _, h, w = x.shape
    dev = x.device
    angle = torch.zeros(n, device=dev)
    shift = torch.zeros(n, 2, device=dev)
    sign = torch.ones(n, device=dev)
    if cfg.rotate_deg > 0 and cfg.rotate_p > 0:
        on = torch.rand(n, device=dev) < cfg.rotate_p
        angle = (torch.rand(n, device=dev) * 2 - 1) * math.radians(cfg.rotate_deg) * on
    if cfg.translate_px > 0 and cfg.translate_p > 0:
        on = torch.rand(n, 1, device=dev) < cfg.translate_p
        px = torch.randint(-cfg.translate_px, cfg.translate_px + 1, (n, 2), device=dev)
        # Whole-pixel shifts land on pixel centres, as a padded random crop does.
        shift = px.float() * on * torch.tensor([2.0 / w, 2.0 / h], device=dev)
    if cfg.flip_p > 0:
        sign = torch.where(torch.rand(n, device=dev) < cfg.flip_p, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos * sign, -sin, shift[:, 0]], 1),
            torch.stack([sin * sign, cos, shift[:, 1]], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _erase(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    n, _, h, w = x.shape
    dev = x.device
    area = 0.02 + torch.rand(n, device=dev) * max(cfg.erase_max_area - 0.02, 0.0)
    log_ratio = (torch.rand(n, device=dev) * 2 - 1) * math.log(3.3)
    eh = (torch.sqrt(area * torch.exp(log_ratio)) * h).clamp(1, h)
    ew = (torch.sqrt(area / torch.exp(log_ratio)) * w).clamp(1, w)
    top = torch.rand(n, device=dev) * (h - eh)
    left = torch.rand(n, device=dev) * (w - ew)
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    box = (
        (rows >= top.view(n, 1, 1))
        & (rows < (top + eh).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1))
        & (cols < (left + ew).view(n, 1, 1))
    )
    on = (torch.rand(n, device=dev) < cfg.erase_p).view(n, 1, 1)
    # Normalised inputs: 0 is the dataset mean, the least surprising fill.
    return x.masked_fill((box & on).unsqueeze(1), 0.0)


def _has_geometric(cfg: AugmentConfig) -> bool:
    return (
        (cfg.translate_px > 0 and cfg.translate_p > 0)
        or (cfg.rotate_deg > 0 and cfg.rotate_p > 0)
        or cfg.flip_p > 0
    )


def is_identity(cfg: AugmentConfig) -> bool:
    return not (_has_geometric(cfg) or cfg.erase_p > 0)


def augment(x: torch.Tensor, cfg: AugmentConfig, data: DataConfig) -> torch.Tensor:
    """uint8 batch -> augmented, normalised float batch (N, 1, 28, 28), on x's device."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    x = x.float() / 255.0
    if _has_geometric(cfg):
        x = _geometric(x, cfg)
    x = (x - data.mean) / data.std
    if cfg.erase_p > 0:
        x = _erase(x, cfg)
    return x
