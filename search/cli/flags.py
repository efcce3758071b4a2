"""Flags that several commands share, each written once."""

from __future__ import annotations

import argparse

from search.run.options import DATA_DIR_HELP, DEVICE_HELP, STORAGE_HELP


def add_data(p: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--device``, as every command that trains takes them."""
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_storage(p: argparse.ArgumentParser, help: str = "") -> None:
    p.add_argument("--storage", help=help or STORAGE_HELP)


def add_artifacts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--artifacts",
        metavar="DIR",
        help="artifact store folder (default: beside a SQLite file, else runs/artifacts)",
    )
