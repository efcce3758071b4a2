"""The lockbox ledger: every opening of the test set is counted before the score is computed.
For a config that came from a study it is written on that study, so "how often was the test
set looked at?" has one answer; a config that names no study counts its openings in a file
beside the run's outputs (``lockbox.jsonl``), so none goes unrecorded.

Each opening is its own study attribute (``lockbox:<nanoseconds>:<random>``), never a counter read
and written back: two retrains at once cannot lose one another's entry. An exported config
carries a reference to its study that ``search.storage.reference.study_of`` reopens.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from fmnist.config import RunConfig, to_dict

PREFIX = "lockbox:"
LEDGER_FILE = "lockbox.jsonl"  # a config without a study: one opening a line


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
