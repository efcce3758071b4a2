"""``fmnist-search``: train, search, inspect, export, retrain, dashboard.

One module per command group; each has ``add(sub)`` that registers its commands, with the
flags they share from ``flags``. A command module imports torch and Lightning (seconds of
start-up) inside the handler that trains, never at its top: every command, ``--help`` and each
refused flag would wait for them (``tests/search_tests/cli_tests/test_startup.py``). The bench
is its own command, ``fmnist-bench``. Every user error ends as one line on stderr and exit code
2; nothing here prints tracebacks for mistakes a user can fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from fmnist.config import ConfigError
from search.cli import auto, export, inspect, proxy, run, train
from search.errors import SearchError

USER_ERRORS = (ConfigError, SearchError, FileNotFoundError)
# Module -> a user error it defines that the CLI cannot import without loading torch.
LOADED_ERRORS = {"fmnist.data": "DataError", "fmnist.classifier": "DivergedError"}


def user_errors() -> tuple[type[Exception], ...]:
    """The errors a user can fix. A corrupt data file and a diverged training run are two, but
    importing their classes would load torch and Lightning, seconds of start-up for every
    command: each can only have been raised once its module was loaded."""
    return USER_ERRORS + tuple(
        getattr(sys.modules[module], name)
        for module, name in LOADED_ERRORS.items()
        if module in sys.modules
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="fmnist-search",
        description="Honest, pruned Optuna + Lightning search for Fashion-MNIST classifiers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (train, run, auto, inspect, export, proxy):
        group.add(sub)
    return parser


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line, as every other user error is."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split()[0]
        self.exit(2, f"{command}: error: {message}; see {self.prog} --help\n")


def guarded(prog: str, call: Callable[[], int]) -> int:
    """Run a command: a user's mistake ends as one line on stderr and exit code 2."""
    try:
        return call()
    except user_errors() as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)  # a failed device's worker: 3, for its launcher
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        print(
            f"{prog}: error: cannot write {e.filename}: {e.strerror}; choose a folder "
            "you can write to",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("fmnist-search", lambda: args.func(args))
