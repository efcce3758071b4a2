"""Where `run --workers/--gpus/--workers-per-gpu` puts its worker processes, and what each is
told."""

from __future__ import annotations

import re

import pytest
import torch

from search.errors import SearchError
from search.run.device_faults import is_device_fault
from search.run.launcher import devices, physical, threads_per_worker
from search.run.options import RunOptions


def test_workers_share_the_given_device():
    assert devices(RunOptions(study="quick", workers=3, device="cpu")) == ["cpu"] * 3


def test_gpus_are_packed_workers_per_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    opts = RunOptions(study="quick", gpus=(0, 2), workers_per_gpu=3)
    assert devices(opts) == ["cuda:0"] * 3 + ["cuda:2"] * 3


def test_worker_argv_joins_the_same_study():
    opts = RunOptions(
        study="quick",
        n_trials=40,
        timeout=60.0,
        seed=3,
        grace_s=10.0,
        storage_retry_s=5.0,
        workers=4,
        gpus=(1,),
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
        "--storage-retry 5.0",
    ):
        assert part in joined
    assert "--workers" not in argv and "--gpus" not in argv  # a worker is one process


def test_gpus_count_the_visible_devices():
    opts = RunOptions(study="quick", gpus=(0, 1), workers_per_gpu=2)
    assert devices(opts, visible="3,5") == ["cuda:0"] * 2 + ["cuda:1"] * 2
    assert physical("cuda:1", "3,5") == "cuda:1 (physical 5)"
    assert physical("cuda:1", None) == "cuda:1"


@pytest.mark.parametrize(
    ("visible", "words"),
    [("3", "--gpus 1: CUDA_VISIBLE_DEVICES='3' leaves GPUs 0 to 0 (physical 3)"),
     ("", "--gpus 0,1: CUDA_VISIBLE_DEVICES='' leaves no GPU")],
)  # fmt: skip
def test_gpus_beyond_the_visible_devices_are_one_line(visible, words):
    with pytest.raises(SearchError, match=re.escape(words)):
        devices(RunOptions(study="quick", gpus=(0, 1)), visible=visible)


def test_every_worker_shares_the_cores_gpu_workers_too():
    assert threads_per_worker(8, cores=16) == 2  # eight packed GPU workers on 16 cores
    assert threads_per_worker(1, cores=16) == 16
    assert threads_per_worker(4, cores=2) == 1


@pytest.mark.parametrize(
    ("opts", "flag"),
    [
        (dict(gpus=(0,), workers=4), "--workers 4 is ignored with --gpus"),
        (dict(gpus=(0,), device="cpu"), "--device cpu is ignored with --gpus"),
        (dict(workers_per_gpu=3, workers=2), "--workers-per-gpu 3 is ignored without --gpus"),
        (dict(ray="auto", gpus=(0,)), "--gpus and --workers-per-gpu place local workers"),
        (dict(ray="auto", gpus_per_worker=0.5, device="cpu"), "--device cpu is ignored"),
    ],
)
def test_flags_a_run_does_not_use_are_named(opts, flag):
    (note,) = RunOptions(study="quick", **opts).ignored()
    assert note.startswith(flag)


def test_flags_a_run_uses_are_not_named():
    assert RunOptions(study="quick", gpus=(0, 1), workers_per_gpu=4).ignored() == []
    assert RunOptions(study="quick", workers=3, device="cpu").ignored() == []


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (RuntimeError("CUDA error: an illegal memory access was encountered"), True),
        (RuntimeError("CUDA error: unspecified launch failure"), True),
        (RuntimeError("CUDA error: uncorrectable ECC error encountered"), True),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), False),
        (RuntimeError("CUDA error: out of memory"), False),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("CUDA error in a config value"), False),
    ],
)
def test_device_faults_are_told_from_trial_errors(error, fault):
    assert is_device_fault(error) is fault
    wrapped = RuntimeError("in training step")
    wrapped.__cause__ = error
    assert is_device_fault(wrapped) is fault
