"""A worker's loop against every storage backend, with a fake objective (no training)."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from search.run.worker import work
from search.storage import open_storage
from search.storage.liveness import RETRY_OF, reap_stale


def test_a_worker_whose_trial_was_reaped_drops_it_and_carries_on(
    storage_url: str, study_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker paused past the grace finds its trial reaped at its next write: a report
    (trial 0) or the tell (trial 1). It drops the trial and claims the next; the retries the
    janitor queued run, and the study ends with exactly its trials."""
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url, retry_s=5))
    janitor = optuna.load_study(study_name=study_name, storage=study._storage)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            assert reap_stale(janitor, grace_s=0) == [0]  # the pause, seen from the janitor
        trial.report(x, 0)
        if trial.number == 1:
            assert reap_stale(janitor, grace_s=0) == [1]
        return x

    ran = work(study, objective, target=2, url=storage_url, poll_s=0.05, janitor=False)

    assert [t.number for t in ran] == [2, 3]
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 2 + [TrialState.COMPLETE] * 2
    assert [t.user_attrs.get(RETRY_OF) for t in trials] == [None, 0, 1, None]
    assert trials[2].params == trials[0].params  # the retry ran what was dropped
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" was reaped")[0] for line in out] == ["trial 0", "trial 1"]
