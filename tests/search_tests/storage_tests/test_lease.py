"""The claim lease on every storage backend: a stopped holder stalls the others for at most its
lease, its token fences it out once another holder took over, and a wait that runs out says
what it waited for."""

from __future__ import annotations

import time

import optuna
import pytest

from search.storage import StorageLost, open_storage
from search.storage.claim import Claim, claim, claim_lock
from search.storage.lease import HOLDER, LeaseLost
from tests.testing import stopped_holder


def test_an_unrenewed_lease_frees_at_its_deadline_and_fences_its_holder(
    storage_url: str, study_name: str
) -> None:
    """A holder that stops renewing (as a stopped process does) loses the lease at its
    deadline, and its next fence fails: its writes would not count."""
    held = claim_lock(storage_url, study_name, retry_s=10, lease_s=0.5)
    stale = held.__enter__()  # never renewed, never released
    start = time.monotonic()
    with claim_lock(storage_url, study_name, retry_s=10) as lease:
        waited = time.monotonic() - start
        with pytest.raises(LeaseLost):
            stale.fence()
        lease.fence()  # the new holder's own renewal succeeds
    assert 0.3 < waited < 0.5 + 1.5, waited  # the lease, and polling on a loaded machine


@pytest.mark.parametrize("storage_url", ["postgresql"], indirect=True)
def test_a_sigstopped_holder_stalls_others_for_its_lease(storage_url: str, study_name: str):
    """A real process stopped while holding: PostgreSQL's advisory lock, before the lease,
    made the others wait for it forever."""
    with stopped_holder(storage_url, study_name, lease_s=1.0) as resume:
        start = time.monotonic()
        with claim_lock(storage_url, study_name, retry_s=30):
            waited = time.monotonic() - start
            assert resume() == "lost"  # its writes would not count
    assert waited < 1.0 + 1.5, waited  # its 1 s lease, and polling on a loaded machine


def test_a_wait_past_its_deadline_names_the_study_storage_and_holder(
    storage_url: str, study_name: str
) -> None:
    with claim_lock(storage_url, study_name, retry_s=10, lease_s=30):
        with pytest.raises(StorageLost) as e:
            with claim_lock(storage_url, study_name, retry_s=0.3):
                pass
    line = str(e.value)
    assert "\n" not in line
    assert f"waited 0.3s for the claim lease of study {study_name!r} on " in line
    assert f"held by {HOLDER}" in line and "s left on its lease" in line


class Stalling:
    """A storage whose next insert of a trial stalls until another worker has claimed: a
    holder stopped past its lease between counting and writing."""

    def __init__(self, inner, stall) -> None:
        self.inner, self.stall = inner, stall

    def create_new_trial(self, *args, **kwargs):
        self.stall()
        return self.inner.create_new_trial(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_claim_made_after_its_lease_was_taken_over_hands_its_slot_back(
    storage_url: str, study_name: str
) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name=study_name, storage=storage)
    other = optuna.load_study(study_name=study_name, storage=storage)
    took = []

    def other_claims_meanwhile() -> None:
        time.sleep(0.4)  # past the stalled holder's lease
        took.append(claim(other, 1, storage_url, retry_s=10).trial)

    stalled = optuna.load_study(
        study_name=study_name, storage=Stalling(storage, other_claims_meanwhile)
    )
    assert claim(stalled, 1, storage_url, retry_s=10, lease_s=0.2) == Claim()  # wait, claim again
    assert took[0] is not None
    states = sorted(t.state.name for t in study.get_trials())
    assert states == ["RUNNING", "WAITING"]  # one slot taken for a target of 1; one handed back
    study.tell(took[0], 0.5)
    assert claim(study, 1, storage_url, retry_s=10) == Claim(done=True)
