from __future__ import annotations

import pytest
import torch

from fmnist.models.dropout import Dropout


@pytest.mark.parametrize("p", [0.25, 0.5])
@pytest.mark.parametrize("channels_last", [False, True])
def test_drops_p_and_rescales(p: float, channels_last: bool) -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 16, 14, 14)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    y = Dropout(p)(x)
    assert y.shape == x.shape
    assert y.unique().tolist() == pytest.approx([0.0, 1 / (1 - p)])
    assert (y == 0).float().mean().item() == pytest.approx(p, abs=0.01)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient flows through kept elements only


def test_mask_is_not_tied_to_memory_layout() -> None:
    """Dropped elements spread over every channel and position, for either layout."""
    torch.manual_seed(0)
    x = torch.ones(32, 8, 7, 7).contiguous(memory_format=torch.channels_last)
    dropped = (Dropout(0.5)(x) == 0).float()
    for dim in range(4):
        rate = dropped.mean(dim=[d for d in range(4) if d != dim])
        assert rate.min() > 0.3 and rate.max() < 0.7


def test_seeded_eval_and_edges() -> None:
    x = torch.randn(8, 4, 5, 5, dtype=torch.bfloat16)
    torch.manual_seed(1)
    a = Dropout(0.3)(x)
    torch.manual_seed(1)
    assert torch.equal(a, Dropout(0.3)(x))
    assert a.dtype == torch.bfloat16
    assert torch.equal(Dropout(0.3).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)
    assert not Dropout(1.0)(x).any()
    assert Dropout(0.3).state_dict() == {}
