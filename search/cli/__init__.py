"""``fmnist-search``: train, search, inspect, export, retrain, dashboard, bench.

One module per command group; each has ``add(sub)`` that registers its commands. Every user
error ends as one line on stderr and exit code 2; nothing here prints tracebacks for mistakes
a user can fix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmnist.classifier import DivergedError
from fmnist.config import ConfigError
from fmnist.data import DataError
from search.errors import SearchError

USER_ERRORS = (ConfigError, DataError, DivergedError, SearchError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    from search.cli import export, inspect, proxy, run, train

    parser = argparse.ArgumentParser(
        prog="fmnist-search",
        description="Honest, pruned Optuna + Lightning search for Fashion-MNIST classifiers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (train, run, inspect, export, proxy):
        group.add(sub)
    from fmnist_bench.cli import add_subcommand

    add_subcommand(sub, add_data)
    return parser


def add_data(p: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--device``, as every command that trains takes them."""
    from search.run.options import DATA_DIR_HELP, DEVICE_HELP

    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_storage(p: argparse.ArgumentParser, help: str = "") -> None:
    from search.run.options import STORAGE_HELP

    p.add_argument("--storage", help=help or STORAGE_HELP)


def out_folder(path: str | Path, flag: str = "--out") -> Path:
    """A folder the command writes into: refused in one line when a file stands there."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise SearchError(f"{flag} {folder} is a file; give a folder (new or existing)")
    return folder


def add_artifacts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--artifacts",
        metavar="DIR",
        help="artifact store folder (default: beside a SQLite file, else runs/artifacts)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"fmnist-search: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)  # a failed device's worker: 3, for its launcher
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
