"""``auto``: one time budget, start-up included, turned into a model card (search, confirm,
final training on every image, one look at the test set); rerun the same command to resume."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from search.auto.budget import process_age
from search.auto.options import AutoOptions
from search.options import add_flags, from_args

AUTO_HELP = (
    "spend one time budget on search, confirmation and a final training on all 60k images; "
    "score the result once on the test set"
)


def this_process_is_the_command() -> bool:
    """Started as ``fmnist-search`` (or ``python -m search.cli``), so its start-up is ours."""
    path = Path(sys.argv[0])
    return path.name == "fmnist-search" or path.parts[-3:] == ("search", "cli", "__main__.py")


def cmd_auto(args: argparse.Namespace) -> int:
    # Deferred: the pipeline imports Lightning, which the parser and a refused flag must not.
    from search.auto.pipeline import auto

    opts = from_args(AutoOptions, args)
    age = process_age() if this_process_is_the_command() else 0.0
    result = auto(opts, started_s_ago=age)
    acc = result["card"]["test_acc"]["mean"]
    line = f"test accuracy {acc:.4f} (1 seed, in the budget)"
    if extra := result.get("extra_seeds"):
        line += f"; {extra['mean']:.4f} +- {extra['std']:.4f} with {extra['label']}"
    print(f"{line}; spent {result['wall_s']:.0f} s of {result['plan']['budget_s']:.0f} s")
    print(f"card: {result['paths']['card']}")
    return 0


def add(sub) -> None:
    p = sub.add_parser("auto", help=AUTO_HELP, description=AUTO_HELP + ".")
    add_flags(p, AutoOptions)
    p.set_defaults(func=cmd_auto)
