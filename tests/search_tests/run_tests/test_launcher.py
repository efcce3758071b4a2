"""Where `run --workers/--gpus/--workers-per-gpu` puts its worker processes, and what each is
told."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from search.errors import SearchError
from search.run.device_faults import is_device_fault
from search.run.join import command
from search.run.launcher import devices, physical, threads_per_worker
from search.run.options import RunOptions
from search.run.plan import Placement


def placement(**opts) -> Placement:
    return Placement.of(RunOptions(study="quick", **opts))


def test_workers_share_the_given_device():
    assert devices(placement(workers=3, device="cpu")) == ["cpu"] * 3


def test_gpus_are_packed_workers_per_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devices(placement(gpus=(0, 2), workers_per_gpu=3)) == ["cuda:0"] * 3 + ["cuda:2"] * 3


def test_a_worker_is_told_only_where_the_study_is_and_where_it_runs():
    argv = command("sqlite:////tmp/s.db", "quick-x", 2, "cuda:1")
    assert argv[1:] == [
        "-m", "search.cli", "worker", "--storage", "sqlite:////tmp/s.db",
        "--study-name", "quick-x", "--worker-index", "2", "--device", "cuda:1",
    ]  # fmt: skip


def test_gpus_count_the_visible_devices():
    spread = devices(placement(gpus=(0, 1), workers_per_gpu=2), visible="3,5")
    assert spread == ["cuda:0"] * 2 + ["cuda:1"] * 2
    assert physical("cuda:1", "3,5") == "cuda:1 (physical 5)"
    assert physical("cuda:1", None) == "cuda:1"


@pytest.mark.parametrize(
    ("visible", "words"),
    [("3", "--gpus 1: CUDA_VISIBLE_DEVICES='3' leaves GPUs 0 to 0 (physical 3)"),
     ("", "--gpus 0,1: CUDA_VISIBLE_DEVICES='' leaves no GPU")],
)  # fmt: skip
def test_gpus_beyond_the_visible_devices_are_one_line(visible, words):
    with pytest.raises(SearchError, match=re.escape(words)):
        devices(placement(gpus=(0, 1)), visible=visible)


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


def test_a_ray_worker_without_gpus_sees_none(monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'fmnist-search[ray]'")
    from search.run.ray_worker import Worker

    monkeypatch.setenv("FMNIST_SEARCH_NODE", "here")  # else the actor asks Ray for its node
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    sees = "import os, sys; sys.exit(len(os.environ['CUDA_VISIBLE_DEVICES']))"
    assert Worker().run(["python", "-c", sees], {}, hide_gpus=True) == 0
    assert Worker().run(["python", "-c", sees], {}, hide_gpus=False) == 1
    assert placement(ray="auto").ray_device == "cpu"
    assert placement(ray="auto", gpus_per_worker=0.25).ray_device == "cuda"


def test_a_ray_actor_imports_neither_torch_nor_lightning():
    """A Ray worker process imports its actor's module; the training stack is its child's."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, search.run.ray_worker; print(sorted("
         "{m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'torchvision'}))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_ray_worker_on_a_gpu_ray_did_not_give_is_refused():
    with pytest.raises(SearchError, match="--device cuda:0 with --ray: .* --gpus-per-worker 1"):
        RunOptions(study="quick", ray="auto", device="cuda:0")
