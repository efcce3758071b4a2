"""A folder a command writes into, checked once before anything runs: by the commands and by
``search.run.start``, which a Python caller reaches without the CLI."""

from __future__ import annotations

from pathlib import Path

from search.errors import SearchError


def out_folder(path: str | Path, flag: str = "--out") -> Path:
    """A folder the command writes into: refused in one line when a file stands there."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise SearchError(f"{flag} {folder} is a file; give a folder (new or existing)")
    return folder
