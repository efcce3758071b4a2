"""``fmnist-search auto``: one time budget turned into a model card. The budget string
(``budget``), the command's options (``options``), the stored plan and the rule that splits
the budget from measured rank correlation (``plan``), and the phases run in order
(``pipeline``)."""

from search.auto.options import AutoOptions
from search.auto.pipeline import auto

__all__ = ["AutoOptions", "auto"]
