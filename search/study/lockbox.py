"""The lockbox ledger: every opening of the test set is counted before the score is computed.
For a config that came from a study it is written on that study, so "how often was the test
set looked at?" has one answer; a config that names no study counts its openings in a file
beside the run's outputs (``lockbox.jsonl``), so none goes unrecorded.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
from sqlalchemy.engine import make_url

from fmnist.config import RunConfig, to_dict
from search.errors import SearchError
from search.storage import DEFAULT_URL, load_study, safe_url, scheme

PREFIX = "lockbox:"
LEDGER_FILE = "lockbox.jsonl"  # a config without a study: one opening a line
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


@dataclass(frozen=True)
class Ledger:
    """Where a config's test-set openings are counted: on its ``study``, else in the file
    ``path``. ``record`` an opening before the score is computed, so that a run that fails
    or is stopped while scoring has still looked."""

    study: optuna.Study | None
    path: Path

    def record(self, config: RunConfig, *, reason: str) -> int:
        """Write one opening; the ledger's total afterwards."""
        if self.study is not None:
            return record(self.study, config, reason=reason)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:  # one short appended line: concurrent runs keep both
            f.write(json.dumps(_entry(config, reason)) + "\n")
        return self.count()

    def count(self) -> int:
        if self.study is not None:
            return len(openings(self.study))
        return len(self.path.read_text().splitlines()) if self.path.is_file() else 0

    def where(self) -> str:
        return f"study {self.study.study_name!r}" if self.study is not None else str(self.path)


def ledger(study: optuna.Study | None, folder: Path) -> Ledger:
    """A config's ledger: its ``study`` (``study_of``), or for a config that names none the
    file in ``folder``, the run's output folder."""
    return Ledger(study, Path(folder) / LEDGER_FILE)


def fingerprint(config: RunConfig) -> str:
    """A short hash of the whole config: which model an opening scored."""
    text = json.dumps(to_dict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def record(study: optuna.Study, config: RunConfig, *, reason: str) -> int:
    """Write one opening on ``study``; the study's total afterwards."""
    key = f"{PREFIX}{time.time_ns():020d}:{uuid.uuid4().hex[:8]}"  # sorts by time
    study.set_user_attr(key, _entry(config, reason))
    return len(openings(study))


def _entry(config: RunConfig, reason: str) -> dict[str, Any]:
    return {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": fingerprint(config),
        "seed": config.seed,
        "reason": reason,
    }


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
