"""A study's reference in an exported config: a SQLite path made absolute, a password never
written and filled back from the environment, a reference without a trial refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.errors import SearchError
from search.storage import reference


def test_a_relative_sqlite_reference_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert reference.reference("sqlite:///runs/s.db") == f"sqlite:///{tmp_path}/runs/s.db"
    masked = reference.reference("postgresql+psycopg://me:secret@db:5432/studies")
    assert "secret" not in masked and masked.startswith("postgresql+psycopg://me:***@db")


def test_a_masked_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = "postgresql+psycopg://me:***@127.0.0.1:1/studies"
    monkeypatch.delenv(reference.PASSWORD_ENV, raising=False)
    with pytest.raises(SearchError, match=reference.PASSWORD_ENV):
        reference.study_of({"study": "s", "trial": 0, "storage": ref}, None)
    monkeypatch.setenv(reference.PASSWORD_ENV, "secret")
    with pytest.raises(SearchError, match="pass --storage") as e:  # unreachable, but filled
        reference.study_of({"study": "s", "trial": 0, "storage": ref}, None)
    assert "secret" not in str(e.value)


def test_provenance_with_a_study_but_no_trial_is_refused() -> None:
    with pytest.raises(SearchError, match="no trial"):
        reference.study_of({"study": "quick"}, None)
