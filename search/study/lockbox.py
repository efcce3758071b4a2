"""The study's lockbox ledger: every opening of the test set for a config that came from a
study is written on that study, so "how often was the test set looked at?" has one answer.

Each opening is its own study attribute (``lockbox:<nanoseconds>:<random>``), never a counter read
and written back: two retrains at once cannot lose one another's entry. An exported config
carries a reference to its study (``[provenance]`` ``study``, ``trial``, ``storage``) that
``study_of`` reopens; a storage password is never written into a config.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url

from fmnist.config import RunConfig, to_dict
from search.errors import SearchError
from search.storage import DEFAULT_URL, load_study, safe_url, scheme

PREFIX = "lockbox:"
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


def fingerprint(config: RunConfig) -> str:
    """A short hash of the whole config: which model an opening scored."""
    text = json.dumps(to_dict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def record(study: optuna.Study, config: RunConfig, *, reason: str) -> int:
    """Write one opening on ``study``; the study's total afterwards."""
    key = f"{PREFIX}{time.time_ns():020d}:{uuid.uuid4().hex[:8]}"  # sorts by time
    entry = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": fingerprint(config),
        "seed": config.seed,
        "reason": reason,
    }
    study.set_user_attr(key, entry)
    return len(openings(study))


def openings(study: optuna.Study) -> list[dict[str, Any]]:
    """Every recorded opening, oldest first."""
    attrs = study.user_attrs
    return [attrs[k] for k in sorted(attrs) if k.startswith(PREFIX)]


def summary(study: optuna.Study) -> str:
    found = openings(study)
    if not found:
        return "test lockbox: never opened for this study"
    last = found[-1]
    return (
        f"test lockbox: opened {len(found)} time(s) for this study; last {last['at']} "
        f"({last['reason']}, config {last['config']})"
    )
