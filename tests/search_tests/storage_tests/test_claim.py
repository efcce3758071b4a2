"""The claim lock and ``claim`` on every storage backend (servers skip where absent)."""

from __future__ import annotations

import threading
import time

import optuna
from optuna.trial import TrialState

from search.storage import open_storage
from search.storage.claim import Claim, claim, claim_lock

NO_REAPING = 3600.0  # grace: no trial of these tests counts as lost


def test_the_claim_lock_admits_one_holder_at_a_time(storage_url: str, study_name: str) -> None:
    holders, most, entries = [0], [0], []
    guard = threading.Lock()

    def contend(worker: int) -> None:
        for _ in range(3):
            with claim_lock(storage_url, study_name, retry_s=10):
                with guard:
                    holders[0] += 1
                    most[0] = max(most[0], holders[0])
                    entries.append(worker)
                time.sleep(0.02)  # long enough for a second holder to show up
                with guard:
                    holders[0] -= 1

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert most[0] == 1
    assert sorted(entries) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_locks_of_two_studies_do_not_wait_for_each_other(storage_url: str, study_name: str) -> None:
    with claim_lock(storage_url, study_name, retry_s=10):
        taken = threading.Event()

        def other() -> None:
            with claim_lock(storage_url, f"{study_name}-other", retry_s=10):
                taken.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert taken.wait(timeout=30)
        thread.join(timeout=30)


def test_claim_stops_at_exactly_the_target_counting_running_trials(
    storage_url: str, study_name: str
) -> None:
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))

    def next_claim() -> Claim:
        return claim(study, 3, storage_url, grace_s=NO_REAPING, retry_s=10)

    running = [next_claim().trial for _ in range(3)]
    assert all(trial is not None for trial in running)
    assert next_claim() == Claim()  # three in flight: wait, one may still fail
    study.tell(running[0], 0.5)
    assert next_claim() == Claim()  # one finished, two in flight
    study.tell(running[1], state=TrialState.FAIL)
    replacement = next_claim().trial  # a failure frees a place
    assert replacement is not None
    assert next_claim() == Claim()
    study.tell(running[2], state=TrialState.PRUNED)  # a pruned trial counts as finished
    study.tell(replacement, 0.7)
    assert next_claim() == Claim(done=True)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert sorted(s.name for s in states) == ["COMPLETE", "COMPLETE", "FAIL", "PRUNED"]
