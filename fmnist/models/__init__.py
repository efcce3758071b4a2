"""Model families, one registry; ``build_model(config.model)`` is the only way in."""

from fmnist.models import mobilenet, resnet, vgg  # noqa: F401  (importing registers)
from fmnist.models._registry import build_model, families, register
from fmnist.models.measure import count_macs, count_params

__all__ = ["build_model", "count_macs", "count_params", "families", "register"]
