"""Where `run --workers/--gpus/--workers-per-gpu` puts its worker processes, and what each is
told."""

from __future__ import annotations

from search.run.launcher import devices
from search.run.options import RunOptions


def test_workers_share_the_given_device():
    assert devices(RunOptions(study="quick", workers=3, device="cpu")) == ["cpu"] * 3


def test_gpus_are_packed_workers_per_gpu():
    opts = RunOptions(study="quick", gpus=(0, 2), workers_per_gpu=3)
    assert devices(opts) == ["cuda:0"] * 3 + ["cuda:2"] * 3


def test_worker_argv_joins_the_same_study():
    opts = RunOptions(
        study="quick", n_trials=40, timeout=60.0, seed=3, grace_s=10.0, workers=4, gpus=(1,)
    )
    argv = opts.worker_argv(
        index=2, device="cuda:1", study_name="quick-x", url="sqlite:////tmp/s.db"
    )
    joined = " ".join(argv)
    for part in (
        "run --study quick",
        "--storage sqlite:////tmp/s.db",
        "--study-name quick-x",
        "--device cuda:1",
        "--worker-index 2",
        "--n-trials 40",
        "--timeout 60.0",
        "--seed 3",
        "--heartbeat-grace 10.0",
    ):
        assert part in joined
    assert "--workers" not in argv and "--gpus" not in argv  # a worker is one process
