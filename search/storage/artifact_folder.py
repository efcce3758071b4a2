"""The artifact store's folder that goes with a storage: beside a SQLite file
(``sqlite:///path/x.db`` -> ``path/artifacts``), under ``runs/`` (or a run's ``--out``) for a
server storage, or the ``--artifacts DIR`` a user gives. Here, not beside the store's writers
in ``search.results.artifacts``, so that ``run``'s launcher and the dashboard find the folder
without importing torch."""

from __future__ import annotations

from pathlib import Path

from search.storage.open import DEFAULT_URL, make_url


def default_dir(storage_url: str | None, out_dir: str | Path = "runs") -> Path:
    """The artifact folder that goes with a storage when ``--artifacts`` is not given."""
    url = storage_url or DEFAULT_URL
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            return Path(database).parent / "artifacts"
    return Path(out_dir) / "artifacts"


def artifacts_dir(
    directory: str | Path | None, storage_url: str | None, out_dir: str | Path = "runs"
) -> Path:
    return Path(directory) if directory else default_dir(storage_url, out_dir)
