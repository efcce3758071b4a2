"""``fmnist-search``: train, search, inspect, export, retrain, dashboard.

One module per command group; each has ``add(sub)`` that registers its commands, with the
flags they share from ``flags``. The bench is its own command, ``fmnist-bench``. Every user
error ends as one line on stderr and exit code 2; nothing here prints tracebacks for mistakes
a user can fix.
"""

from __future__ import annotations

import argparse
import sys

from fmnist.classifier import DivergedError
from fmnist.config import ConfigError
from fmnist.data import DataError
from search.cli import export, inspect, proxy, run, train
from search.errors import SearchError

USER_ERRORS = (ConfigError, DataError, DivergedError, SearchError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmnist-search",
        description="Honest, pruned Optuna + Lightning search for Fashion-MNIST classifiers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (train, run, inspect, export, proxy):
        group.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"fmnist-search: error: {e}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        print(
            f"fmnist-search: error: cannot write {e.filename}: {e.strerror}; choose a folder "
            "you can write to",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("fmnist-search: interrupted", file=sys.stderr)
        return 130
