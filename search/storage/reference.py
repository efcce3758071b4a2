"""A study's reference, as an exported config's ``[provenance]`` names it (``study``,
``trial``, ``storage``), and reopening the study it names. A storage password is never
written into a config; ``$FMNIST_STORAGE_PASSWORD`` fills it back in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna

from search.errors import SearchError
from search.storage.open import DEFAULT_URL, load_study, make_url, safe_url, scheme

PASSWORD_ENV = "FMNIST_STORAGE_PASSWORD"  # fills a masked password of an exported reference


def reference(url: str | None) -> str:
    """The storage as an exported config names it: a SQLite path made absolute (the config
    may be used from another folder), any password left out."""
    url = url or DEFAULT_URL
    if scheme(url) == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            return f"sqlite:///{Path(database).resolve()}"
    return safe_url(url)


def _reopenable(ref: str) -> str:
    if "***" not in ref:
        return ref
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise SearchError(
            f"the config's study is in {ref}, whose password is not stored; set "
            f"${PASSWORD_ENV} or pass --storage with the full URL"
        )
    if scheme(ref) == "redis":  # not a SQLAlchemy URL; safe_url masks it as :***@
        return ref.replace(":***@", f":{quote(password, safe='')}@", 1)
    return make_url(ref.replace("***", "x")).set(password=password).render_as_string(False)


def study_of(provenance: dict[str, Any], storage: str | None) -> optuna.Study | None:
    """The study a config came from, or None for a config that names none. ``storage`` (the
    user's ``--storage``) wins over the config's reference. Raises one line when the config
    names a study that cannot be reached, before anything trains."""
    if "study" not in provenance:
        return None
    if "trial" not in provenance:
        raise SearchError(
            "the config's [provenance] names a study but no trial; add trial = N, or drop "
            "the [provenance] table to use the config on its own"
        )
    url = storage or _reopenable(str(provenance.get("storage") or DEFAULT_URL))
    try:
        return load_study(str(provenance["study"]), url)
    except SearchError as e:
        raise SearchError(
            f"cannot record test-set openings on the config's study: {e}; pass --storage URL "
            "with the study's storage"
        ) from None
