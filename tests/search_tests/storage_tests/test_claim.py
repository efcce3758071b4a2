"""The claim lock and ``claim`` on every storage backend (servers skip where absent)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time

import optuna
from optuna.trial import TrialState

import search.storage.claim as claim_module
from search.storage import open_storage
from search.storage.claim import Claim, claim, claim_lock, created_since, tidy
from search.storage.liveness import HEARTBEAT_KEY, RETRY_OF
from tests.testing import environment


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
        return claim(study, 3, storage_url, retry_s=10)

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


def test_a_claim_takes_an_enqueued_trial_first(storage_url: str, study_name: str) -> None:
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    study.enqueue_trial({"x": 0.25})
    trial = claim(study, 5, storage_url, retry_s=10).trial
    assert trial.suggest_float("x", 0, 1) == 0.25
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]


def test_created_since_counts_the_trials_from_a_number_on(storage_url: str, study_name: str):
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    assert created_since(study, 0) == 0
    for made in range(1, 14):
        study.ask()
        if made in (1, 2, 5, 13):
            assert [created_since(study, n) for n in (0, 1, made)] == [made, made - 1, 0]


def test_a_claim_counts_the_trials_made_between_its_read_and_its_lease(
    storage_url: str, study_name: str
) -> None:
    """The study is read before the lease; trials another worker reserved meanwhile still
    count, so the claim waits instead of starting a fourth trial for a target of three."""
    mine = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    theirs = optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
    read, got = threading.Event(), []
    real_read = mine._storage.get_all_trials

    def read_then_tell(*args, **kwargs):
        trials = real_read(*args, **kwargs)
        read.set()
        return trials

    mine._storage.get_all_trials = read_then_tell
    with claim_lock(storage_url, study_name, retry_s=30):
        waiter = threading.Thread(target=lambda: got.append(claim(mine, 3, storage_url)))
        waiter.start()
        assert read.wait(timeout=30)  # it has read an empty study and waits for the lease
        for _ in range(3):
            theirs.ask()
    waiter.join(timeout=60)
    assert got == [Claim()]
    assert len(theirs.get_trials(deepcopy=False)) == 3


def test_under_the_lease_a_claim_reads_no_trial_in_bulk(
    storage_url: str, study_name: str, monkeypatch
) -> None:
    """What the lease is held for does not grow with the study: trials are read before it,
    and under it only the ones made since are counted (point reads) and a slot reserved."""
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    for _ in range(20):
        study.tell(study.ask(), 0.5)
    for _ in range(5):
        study.ask().set_user_attr("config", {"width": 64})
    holding, bulk = [False], []
    real_lock, real_read = claim_module.claim_lock, study._storage.get_all_trials

    @contextlib.contextmanager
    def lock(*args, **kwargs):
        with real_lock(*args, **kwargs) as lease:
            holding[0] = True
            try:
                yield lease
            finally:
                holding[0] = False

    def read(*args, **kwargs):
        bulk.append(holding[0])
        return real_read(*args, **kwargs)

    monkeypatch.setattr(claim_module, "claim_lock", lock)
    study._storage.get_all_trials = read
    trial = claim(study, 100, storage_url, retry_s=10).trial
    assert trial is not None and trial.number == 25
    assert bulk and not any(bulk)  # read before the lease, never under it


class RejectingSampler(optuna.samplers.RandomSampler):
    def before_trial(self, study, trial):
        raise ValueError("low > high in [ranges]")


def test_a_sampler_error_fails_the_reserved_trial_with_one_line(
    storage_url: str, study_name: str
) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=RejectingSampler())
    try:
        claim(study, 5, storage_url, retry_s=10)
    except ValueError:
        pass
    else:
        raise AssertionError("the sampler's error was swallowed")
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL  # never left RUNNING
    assert trial.user_attrs["fail_reason"] == "ValueError: low > high in [ranges]"


def test_tidy_reaps_a_dead_workers_trial_once(storage_url: str, study_name: str) -> None:
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    lost, live = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), study.ask()
    for trial in (lost, live):
        study._storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_KEY, 1.0)
    assert tidy(study, storage_url, grace_s=0.3, retry_s=10) == []  # first sight
    time.sleep(0.4)
    study._storage.set_trial_system_attr(live._trial_id, HEARTBEAT_KEY, 2.0)  # live beats
    assert tidy(study, storage_url, grace_s=0.3, retry_s=10) == [lost.number]
    study._storage.set_trial_system_attr(live._trial_id, HEARTBEAT_KEY, 3.0)
    assert tidy(study, storage_url, grace_s=0.3, retry_s=10) == []
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {0: TrialState.FAIL, 1: TrialState.RUNNING, 2: TrialState.WAITING}
    assert study.get_trials()[2].user_attrs[RETRY_OF] == lost.number


WORKER = """
import sys, time
import optuna
from search.run.worker import work
from search.storage import open_storage

url, name = sys.argv[1], sys.argv[2]
study = optuna.create_study(study_name=name, storage=open_storage(url, retry_s=10))

def fake(trial):  # what a real trial asks of the storage, without training
    trial.set_user_attr("config", {"x": trial.suggest_float("x", 0, 1)})
    for epoch in range(2):
        trial.report(0.5, epoch)
    return 0.5

ran = work(study, fake, target=5, url=url, poll_s=0.1)
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "lightning", "torchvision",
                                                          "sqlalchemy"})
print(len(ran), rss // 1024, heavy)
"""


def test_a_worker_with_a_fake_objective_imports_no_torch(storage_url: str, study_name: str):
    done = subprocess.run(
        [sys.executable, "-c", WORKER, storage_url, study_name],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ran, rss_mb, heavy = done.stdout.split(maxsplit=2)
    # SQLAlchemy only where the study is in a database: a worker on Redis never loads it
    expected = "[]" if storage_url.startswith("redis") else "['sqlalchemy']"
    assert (ran, heavy.strip()) == ("5", expected)
    assert int(rss_mb) < 100, rss_mb
