"""``fmnist-search bench``: figures measured on this machine, beside the library rather than
inside it (as Optuna keeps its ``benchmarks/``).

- ``machine``: what a figure was measured on, and how busy the machine was;
- ``clock``: step time per epoch, images/s, interleaved repeats;
- ``trainer`` and ``pipeline2020``: our trainer and the 2020 report's pipeline, timed alike;
- ``optuna_recipe``: Optuna's published Lightning recipe for Fashion-MNIST, in our own code;
- ``parts``: one module per group of parts, each printing its tables and returning its figures;
- ``targets``: the figures judged against the issues' targets;
- ``cli``: the ``bench`` subcommand.

``fmnist/`` never imports this package, nor Optuna.
"""
