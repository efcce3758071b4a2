"""The study's lockbox ledger: every opening of the test set for a config that came from a
study is written on that study, so "how often was the test set looked at?" has one answer.

Each opening is its own study attribute (``lockbox:<nanoseconds>:<random>``), never a counter read
and written back: two retrains at once cannot lose one another's entry. An exported config
carries a reference to its study that ``search.storage.reference.study_of`` reopens.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import optuna

from fmnist.config import RunConfig, to_dict

PREFIX = "lockbox:"


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
