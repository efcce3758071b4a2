"""A fault test's account of its study (the ``ledger`` fixture): what was asked, what the study
holds after the faults, and what was lost or duplicated on the way, as one row of the
reliability table (``tools/reliability_table.py``) and as assertions that fail when the study
is wrong."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial, TrialState

ROWS_ENV = "FMNIST_RELIABILITY_ROWS"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RETRY_OF = "retry_of"  # search.storage.liveness's user attr, read here as a user would


def write_row(row: dict[str, Any]) -> None:
    if path := os.environ.get(ROWS_ENV):
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def chain_root(trial: FrozenTrial, by_number: dict[int, FrozenTrial]) -> int:
    """The trial a retry chain started from (the trial itself when it retries nothing)."""
    seen, number = set(), trial.number
    while (origin := by_number[number].user_attrs.get(RETRY_OF)) is not None:
        if origin in seen or origin not in by_number:
            return origin
        seen.add(number)
        number = origin
    return number


def audit(
    trials: Sequence[FrozenTrial], *, asked: int, before: dict[int, tuple] | None = None
) -> dict[str, list]:
    """What is wrong with a study that was asked for ``asked`` finished trials: each entry
    lists the trial numbers (or configs) at fault, empty when none is.

    A retry chain (a trial and the retries that point back at it) is one piece of work: it
    must finish at most once, and a retry must retry a trial that failed. An enqueued config
    (a baseline) is one piece of work too, whoever claimed it."""
    by_number = {t.number: t for t in trials}
    finished = [t for t in trials if t.state in FINISHED]
    per_chain = Counter(chain_root(t, by_number) for t in finished)
    enqueued = Counter(
        json.dumps(t.system_attrs["fixed_params"], sort_keys=True)
        for t in finished
        if "fixed_params" in t.system_attrs and RETRY_OF not in t.user_attrs
    )
    now = {t.number: (t.params, t.values) for t in finished}
    return {
        "missing": [asked - len(finished)] if len(finished) < asked else [],
        "beyond_asked": [t.number for t in finished][asked:],
        "chains_finished_twice": sorted(n for n, k in per_chain.items() if k > 1),
        "retries_of_unfailed": sorted(
            t.number
            for t in trials
            if (o := t.user_attrs.get(RETRY_OF)) is not None
            and (o not in by_number or by_number[o].state != TrialState.FAIL)
        ),
        "enqueued_finished_twice": sorted(c for c, k in enqueued.items() if k > 1),
        "changed_since_before": sorted(n for n, old in (before or {}).items() if now.get(n) != old),
        "left_running": [t.number for t in trials if t.state == TrialState.RUNNING],
        "left_waiting": [t.number for t in trials if t.state == TrialState.WAITING],
    }


class Ledger:
    """One test's account of its study."""

    def __init__(self, test: str) -> None:
        self.test = test

    @staticmethod
    def snapshot(trials: Sequence[FrozenTrial]) -> dict[int, tuple]:
        """The finished trials before a fault, to be found unchanged after it."""
        return {t.number: (t.params, t.values) for t in trials if t.state in FINISHED}

    def check(
        self,
        trials: Sequence[FrozenTrial],
        *,
        backend: str,
        asked: int,
        faults: str,
        workers: int = 1,
        before: dict[int, tuple] | None = None,
    ) -> dict[str, Any]:
        """Record this test's row, then assert that nothing was lost (exactly ``asked``
        finished trials, those finished ``before`` the fault unchanged), nothing duplicated
        (no retry chain or enqueued config finished twice, no retry of a trial that did not
        fail) and nothing left RUNNING or WAITING."""
        found = audit(trials, asked=asked, before=before)
        row = self._row(backend, asked, faults, workers) | {
            "finished": sum(t.state in FINISHED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "lost": sum(found["missing"]) + len(found["changed_since_before"]),
            "duplicated": len(found["beyond_asked"])
            + len(found["chains_finished_twice"])
            + len(found["retries_of_unfailed"])
            + len(found["enqueued_finished_twice"]),
            "running_left": len(found["left_running"]) + len(found["left_waiting"]),
        }
        write_row(row)
        wrong = {k: v for k, v in found.items() if v}
        assert not wrong, f"study is wrong: {wrong}"
        return row

    def record_no_study(self, *, backend: str, faults: str) -> dict[str, Any]:
        """The row of a test that asked for no trial and whose storage holds no study (it was
        down at start): recorded as it is, with nothing to check on a study."""
        row = self._row(backend, 0, faults, 1)
        write_row(row)
        return row

    def _row(self, backend: str, asked: int, faults: str, workers: int) -> dict[str, Any]:
        return {"kind": "row", "test": self.test, "backend": backend, "workers": workers,
                "asked": asked, "finished": 0, "failed": 0, "faults": faults, "lost": 0,
                "duplicated": 0, "running_left": 0}  # fmt: skip
