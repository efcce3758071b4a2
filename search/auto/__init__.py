"""``fmnist-search auto``: one time budget turned into a model card. The budget string
(``budget``), the command's options (``options``), the stored plan and the rule that splits
the budget from measured rank correlation (``plan``), and the phases run in order
(``pipeline``). Import them from their modules: the package itself imports nothing, so
that ``auto``'s flags (``options``) load without the training stack that ``pipeline`` pulls in."""
