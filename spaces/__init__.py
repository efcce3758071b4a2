"""Search spaces, one module per model family; ``get(name)`` is the only way in.

Parameter names are a stored interface (Optuna keys a study's history by them): keep them
stable and prefixed by branch, and bump a space's ``version`` when a meaning changes.
"""

from spaces import mobilenet, resnet, vgg  # noqa: F401  (importing registers)
from spaces._registry import CHOICE, Sample, Space, combine, get, names, register

__all__ = ["CHOICE", "Sample", "Space", "combine", "get", "names", "register"]
