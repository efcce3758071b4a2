"""The retrying storage proxy over every backend: a storage whose calls fail with a lost
connection a few times, the real database behind it; time is faked, so nothing waits."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from search.storage import StorageLost, open_storage
from search.storage import retry as retry_module
from search.storage.retry import RetryingStorage, transient


def lost_connection() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed connection"))


class Flaky:
    """``inner`` whose ``method`` raises ``error`` on its first ``fails`` calls; with
    ``after``, the call is made first and only its reply is lost."""

    def __init__(self, inner, method: str, fails: int, error=lost_connection, after=False):
        self.inner, self.method, self.fails = inner, method, fails
        self.error, self.after, self.calls = error, after, 0

    def __getattr__(self, name: str):
        if name != self.method:
            return getattr(self.inner, name)

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls > self.fails:
                return getattr(self.inner, name)(*args, **kwargs)
            if self.after:
                getattr(self.inner, name)(*args, **kwargs)
            raise self.error()

        return call


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits of the backoff loop, on a clock that moves only when it sleeps."""
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(
        retry_module, "time", SimpleNamespace(monotonic=lambda: now[0], sleep=sleep)
    )
    return slept


def proxy(url: str, name: str, budget_s: float = 60, **flaky) -> tuple[RetryingStorage, Flaky]:
    inner = Flaky(open_storage(url), **flaky)
    return RetryingStorage(inner, "the-label", budget_s), inner


def test_a_call_failing_transiently_is_retried_until_it_succeeds(
    storage_url: str, study_name: str, sleeps: list[float]
) -> None:
    storage, inner = proxy(storage_url, study_name, method="create_new_study", fails=3)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], study_name)
    assert inner.calls == 4 and sleeps == [0.5, 1.0, 2.0]
    assert storage.get_study_id_from_name(study_name) == study_id


def test_a_call_failing_otherwise_is_raised_at_once(
    storage_url: str, study_name: str, sleeps: list[float]
) -> None:
    storage, inner = proxy(
        storage_url, study_name, method="get_all_studies", fails=5, error=lambda: KeyError("x")
    )
    with pytest.raises(KeyError):
        storage.get_all_studies()
    assert inner.calls == 1 and sleeps == []


def test_the_budget_ends_in_storage_lost(
    storage_url: str, study_name: str, sleeps: list[float]
) -> None:
    storage, inner = proxy(storage_url, study_name, budget_s=5, method="get_all_studies", fails=99)
    with pytest.raises(StorageLost, match="storage the-label unreachable for 5s") as e:
        storage.get_all_studies()
    assert "OperationalError" in str(e.value)
    assert sleeps == [0.5, 1.0, 2.0] and inner.calls == 4  # a fourth wait would pass 5 s


def test_a_state_write_whose_reply_was_lost_is_not_repeated(
    storage_url: str, study_name: str, sleeps: list[float]
) -> None:
    storage, inner = proxy(
        storage_url, study_name, method="set_trial_state_values", fails=1, after=True
    )
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
    trial = study.ask()
    assert storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [0.9])
    assert inner.calls == 1 and sleeps == []  # it landed: no second write
    assert study.trials[0].state == TrialState.COMPLETE and study.trials[0].value == 0.9


def test_optunas_wrapped_errors_are_seen_through() -> None:
    try:
        try:
            raise lost_connection()
        except sqlalchemy.exc.OperationalError as e:
            raise optuna.exceptions.StorageInternalError("wrapped") from e
    except optuna.exceptions.StorageInternalError as wrapped:
        assert transient(wrapped)
    assert not transient(ValueError("bad value"))
