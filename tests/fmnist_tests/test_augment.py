from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fmnist.augment import augment, is_identity, to_input
from fmnist.config import AugmentConfig, DataConfig

DATA = DataConfig()
EVERYTHING = AugmentConfig(translate_px=3, rotate_deg=15.0, flip_p=0.5, erase_p=0.5)
LOW, HIGH = (0 - DATA.mean) / DATA.std, (1 - DATA.mean) / DATA.std


@pytest.fixture
def batch() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)


def one_image_repeated(n: int = 64) -> torch.Tensor:
    """A shape with no symmetry (an off-centre L), so any move shows."""
    img = torch.zeros(28, 28, dtype=torch.uint8)
    img[6:20, 8:11] = 255
    img[17:20, 8:18] = 180
    return img.expand(n, 28, 28).clone()


@pytest.mark.parametrize("cfg", [AugmentConfig(), EVERYTHING])
@pytest.mark.parametrize("channel_dim", [False, True])
def test_shape_and_dtype(batch: torch.Tensor, cfg: AugmentConfig, channel_dim: bool) -> None:
    x = batch.unsqueeze(1) if channel_dim else batch
    out = augment(x, cfg, DATA)
    assert out.shape == (64, 1, 28, 28) and out.dtype == torch.float32
    assert to_input(x, DATA).shape == (64, 1, 28, 28)


def test_values_stay_in_the_normalised_pixel_range(batch: torch.Tensor) -> None:
    out = augment(batch, EVERYTHING, DATA)
    assert out.min() >= LOW - 1e-5 and out.max() <= HIGH + 1e-5
    assert torch.isfinite(out).all()


def test_normalisation() -> None:
    x = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert torch.allclose(to_input(x, DATA).flatten(), torch.tensor([LOW, HIGH]))


@pytest.mark.parametrize(
    "cfg",
    [
        AugmentConfig(),
        AugmentConfig(translate_px=3, translate_p=0.0, rotate_deg=7.0, rotate_p=0.0),
        AugmentConfig(erase_max_area=0.4, tta_flip=True),
    ],
)
def test_disabled_steps_are_the_identity(batch: torch.Tensor, cfg: AugmentConfig) -> None:
    assert is_identity(cfg)
    assert torch.equal(augment(batch, cfg, DATA), to_input(batch, DATA))


@pytest.mark.parametrize(
    "cfg",
    [
        AugmentConfig(translate_px=2),
        AugmentConfig(rotate_deg=10.0),
        AugmentConfig(flip_p=0.5),
        AugmentConfig(erase_p=0.5),
        EVERYTHING,
    ],
)
def test_parameters_are_drawn_per_sample(cfg: AugmentConfig) -> None:
    assert not is_identity(cfg)
    torch.manual_seed(1)
    out = augment(one_image_repeated(), cfg, DATA)
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 1


def test_seeded_draws_repeat(batch: torch.Tensor) -> None:
    torch.manual_seed(7)
    a = augment(batch, EVERYTHING, DATA)
    torch.manual_seed(7)
    assert torch.equal(a, augment(batch, EVERYTHING, DATA))


def test_flip_mirrors_exactly(batch: torch.Tensor) -> None:
    out = augment(batch, AugmentConfig(flip_p=1.0), DATA)
    assert torch.allclose(out, to_input(batch, DATA).flip(-1), atol=1e-5)


def test_translation_is_a_padded_crop_within_range(batch: torch.Tensor) -> None:
    torch.manual_seed(2)
    out = augment(batch, AugmentConfig(translate_px=3), DATA)
    # Every 28x28 crop of the image padded by 3 px, padding at the pixel value 0 (LOW here).
    padded = F.pad(to_input(batch, DATA), (3, 3, 3, 3), value=LOW)
    crops = torch.stack([padded[..., y : y + 28, x : x + 28] for y in range(7) for x in range(7)])
    error = (crops - out).abs().flatten(2).max(-1).values  # (crop, sample)
    best = error.min(0)
    assert (best.values < 1e-4).all(), "every sample is a shift of at most 3 pixels"
    assert best.indices.unique().numel() > 5


def test_probability_applies_per_sample() -> None:
    torch.manual_seed(3)
    x = one_image_repeated(200)
    out = augment(x, AugmentConfig(rotate_deg=10.0, rotate_p=0.5), DATA)
    untouched = (out - to_input(x, DATA)).abs().flatten(1).max(1).values < 1e-4
    assert 0.3 < untouched.float().mean() < 0.7


def test_erasing_fills_one_rectangle_with_the_mean() -> None:
    torch.manual_seed(4)
    x = torch.full((64, 28, 28), 255, dtype=torch.uint8)
    cfg = AugmentConfig(erase_p=1.0, erase_max_area=0.25)
    out = augment(x, cfg, DATA)[:, 0]
    for img in out:
        erased = img == 0.0
        rows, cols = erased.any(1).nonzero().flatten(), erased.any(0).nonzero().flatten()
        assert rows.numel() and cols.numel()
        box = erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all(), "the erased pixels form one rectangle"
        assert erased.sum() <= 0.25 * 784 * 1.5  # area bound, loose for pixel rounding
        assert torch.allclose(img[~erased], torch.tensor(HIGH))


def test_rotation_keeps_the_centre_and_moves_the_rest() -> None:
    torch.manual_seed(5)
    x = one_image_repeated(16)
    cfg = AugmentConfig(rotate_deg=30.0)
    out, base = augment(x, cfg, DATA), to_input(x, DATA)
    assert not torch.allclose(out, base, atol=1e-3)
    # The mass centre of a shape rotated about the image centre stays at the same radius.
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")

    def radius(img: torch.Tensor) -> torch.Tensor:
        mass = img - LOW
        cy, cx = (mass * yy).sum() / mass.sum(), (mass * xx).sum() / mass.sum()
        return torch.hypot(cy - 13.5, cx - 13.5)

    for o in out[:, 0]:
        assert abs(radius(o) - radius(base[0, 0])) < 0.6


@pytest.mark.gpu
def test_runs_on_cuda(batch: torch.Tensor) -> None:
    x = batch.cuda()
    out = augment(x, EVERYTHING, DATA)
    assert out.is_cuda and out.shape == (64, 1, 28, 28)
    assert out.min() >= LOW - 1e-5 and out.max() <= HIGH + 1e-5
