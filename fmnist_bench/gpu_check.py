"""``fmnist-bench gpu-check``: the prepared check for a GPU lent for a few minutes.

In order: versions and ``nvidia-smi``; the ``gpu``-marked tests; seconds per epoch of every
model family in bf16 with channels_last; one worker running six short trials with an
injected error and an injected out-of-memory (``cuda_bytes_after``, post-fit seconds, the
trial after the OOM); four workers packed on the GPU with one SIGKILLed after its first epoch
(its retry resumes from the checkpoint); threads per process on the machine's CPU. It writes
``gpu-check.json`` and ``trials.csv`` (every trial of both studies) into the folder it names.
``--budget tiny`` runs the same steps on the CPU in well under a minute of training (CI runs
it); ``full`` is sized for at most six minutes on one H200. Runs from the source tree.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning
import optuna
import tomli_w
import torch

from fmnist.config import MobileNetConfig, ResNetConfig, RunConfig, VGGConfig, replace
from fmnist.train import resolve_device
from fmnist_bench import trainer
from fmnist_bench.parts.threads import grid
from search.errors import SearchError
from search.options import flag
from search.storage.liveness import retry_chain

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Budget:
    """How much each step trains."""

    pace_images: int  # training images per timed epoch, per family
    pace_epochs: int
    subset: int  # a trial's training + validation images
    val_size: int
    width: int  # the trials' ResNet width
    packed_workers: int
    packed_trials: int
    thread_images: int  # per process in the threads grid; 0 skips it
    tests: bool  # run the gpu-marked tests


BUDGETS = {
    "full": Budget(60_000, 2, 12_000, 2_000, 32, 4, 8, 8192, True),
    "tiny": Budget(256, 1, 300, 100, 4, 2, 3, 0, False),
}
FAMILIES = ("vgg", "resnet", "mobilenet")
TINY_MODELS = {
    "vgg": VGGConfig(widths=(8, 16), convs_per_block=1, pools=2, fc_width=32),
    "resnet": ResNetConfig(intro_width=8, widths=(8, 16), blocks=(1, 1), strides=(2, 2)),
    "mobilenet": MobileNetConfig(channels=(8, 16), depths=(1, 1), strides=(1, 2), last_width=32),
}
SINGLE_FAULTS = "error@1,oom@3"  # the trial after the OOM is trial 4
KILLED = "kill@1:0"  # trial 1's worker is SIGKILLed once epoch 0 is checkpointed
# Where the gpu-marked tests live; not all of tests/, whose Ray tests need Ray to collect.
GPU_TESTS = ("tests/fmnist_tests",)
GRACE_S = 5  # heartbeat grace: the killed worker's trial is retried this soon


@dataclass(frozen=True)
class CheckOptions:
    """What ``fmnist-bench gpu-check`` runs and where its figures go."""

    out: Path = field(
        default_factory=lambda: Path("runs/gpu-check") / time.strftime("%Y%m%d-%H%M%S"),
        metadata=flag(
            "folder for gpu-check.json and trials.csv (default runs/gpu-check/<time>)",
            metavar="DIR",
            parse=Path,
        ),
    )
    device: str = field(default="auto", metadata=flag("auto, cpu, cuda or cuda:N"))
    budget: str = field(
        default="full",
        metadata=flag(
            "full: six minutes on one H200; tiny: every step on the CPU (the CI test)",
            choices=sorted(BUDGETS),
        ),
    )
    data_dir: str | None = field(
        default=None, metadata=flag("folder with the Fashion-MNIST IDX files")
    )

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise SearchError(f"--budget {self.budget}: use one of {', '.join(BUDGETS)}")
        if self.out.exists() and not self.out.is_dir():
            raise SearchError(f"--out {self.out} is a file; give a folder")


def check(opts: CheckOptions) -> dict[str, Any]:
    """Run every step, printing as it goes; the figures, also written to ``opts.out``."""

    device = resolve_device(opts.device)
    if device != "cpu":
        return _check(opts, device)
    # A code-path check, not a speed figure: one thread per process, as part f found fastest
    # on a shared CPU, keeps it from spin-waiting on busy cores (CI machines). Restored
    # after, so a caller in the same process (the test suite) trains as before.
    threads, env = torch.get_num_threads(), os.environ.get("FMNIST_SEARCH_THREADS")
    torch.set_num_threads(1)
    os.environ["FMNIST_SEARCH_THREADS"] = "1"  # the single worker's process too
    try:
        return _check(opts, device)
    finally:
        torch.set_num_threads(threads)
        if env is None:
            os.environ.pop("FMNIST_SEARCH_THREADS", None)
        else:
            os.environ["FMNIST_SEARCH_THREADS"] = env


def _check(opts: CheckOptions, device: str) -> dict[str, Any]:
    budget = BUDGETS[opts.budget]
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "argv": sys.argv,
        "options": {k: str(v) for k, v in asdict(opts).items()},
        "budget": asdict(budget),
        "device": device,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    begin = time.perf_counter()
    steps = (
        ("versions", lambda: versions(device)),
        ("gpu_tests", lambda: gpu_tests(device, budget)),
        ("epoch_seconds", lambda: epoch_seconds(device, budget, opts.data_dir)),
        ("single_worker", lambda: single_worker(device, budget, opts.data_dir, out)),
        ("packed", lambda: packed(device, budget, opts.data_dir, out)),
        ("threads", lambda: threads(budget, opts.data_dir)),
    )
    for name, step in steps:
        t0 = time.perf_counter()
        print(f"\n== {name}", flush=True)
        try:
            report[name] = step()
        except Exception as e:  # one broken step must not cost the others' figures
            report[name] = {"error": f"{type(e).__name__}: {e}"}
        report[name + "_seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(report[name], default=str)[:2000], flush=True)
        (out / "gpu-check.json").write_text(json.dumps(report, indent=2, default=str))
    trials = trial_rows(out)
    write_csv(trials, out / "trials.csv")
    report["trials_csv"] = str(out / "trials.csv")
    report["seconds"] = round(time.perf_counter() - begin, 1)
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\ngpu-check took {report['seconds']:.0f} s; wrote {out}/gpu-check.json and trials.csv")
    return report


def versions(device: str) -> dict[str, Any]:

    smi = shutil.which("nvidia-smi")
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "lightning": lightning.__version__,
        "optuna": optuna.__version__,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "cpu_cores": os.cpu_count(),
        "nvidia_smi": subprocess.run([smi], capture_output=True, text=True, timeout=30).stdout
        if smi
        else "no nvidia-smi on this machine",
    }


def gpu_tests(device: str, budget: Budget) -> dict[str, Any]:
    if not (budget.tests and device.startswith("cuda")):
        return {"skipped": "no CUDA device or a tiny budget"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", *GPU_TESTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(),
    )
    return {"exit_code": done.returncode, "tail": (done.stdout + done.stderr)[-1500:]}


def epoch_seconds(device: str, budget: Budget, data_dir) -> dict[str, Any]:
    """Training seconds per 60k-image epoch, bf16 + channels_last on a GPU (fp32 +
    channels_last on a CPU, where bf16 costs minutes of kernel set-up on a loaded machine)."""

    rows = {}
    for family in FAMILIES:
        if budget.tests:  # the shipped run configs on a GPU
            config = trainer.run_config(family)
        else:  # a few thousand weights per family, so the CPU mode stays small
            config = RunConfig(model=TINY_MODELS[family])
        config = replace(config, precision=_precision(device), channels_last=True)
        row = trainer.throughput(
            config,
            images=budget.pace_images,
            epochs=budget.pace_epochs,
            device=device,
            data_dir=data_dir,
        )
        rows[family] = {
            "seconds_per_60k": trainer.EPOCH_IMAGES / row["images_per_s"],
            "images_per_epoch": row["images_per_epoch"],
            "images_per_s": row["images_per_s"],
            "epoch_seconds": row["epoch_seconds"],
            "precision": row["precision"],
        }
    return rows


def _precision(device: str) -> str:
    return "bf16" if device.startswith("cuda") else "32"


def _preset(folder: Path, name: str, budget: Budget, n_trials: int, device: str) -> Path:
    """A two-epoch ResNet study of short trials, written to ``folder/name.toml``."""
    preset = {
        "space": "resnet",
        "epochs": 2,
        "subset": budget.subset,
        "val_size": budget.val_size,
        "n_trials": n_trials,
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        # [fixed], not [ranges]: the tiny budget's widths lie below the space's.
        "fixed": {
            "resnet.intro_width": budget.width,
            "resnet.width": budget.width,
            "resnet.stages": 2,
            "resnet.blocks": 1,
            "optim.batch_size": 128,
        },
        "base": {"precision": _precision(device), "channels_last": True},
    }
    path = folder / f"{name}.toml"
    path.write_text(tomli_w.dumps(preset))
    return path


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return os.environ | {"PYTHONPATH": path, "PYTHONUNBUFFERED": "1"} | extra


def _run(folder: Path, name: str, preset: Path, faults: str, *flags: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "search.cli", "run", "--study", str(preset),
            "--storage", f"sqlite:///{folder}/{name}.db", "--out", str(folder / "runs"),
            "--heartbeat-grace", str(GRACE_S), "--storage-retry", str(GRACE_S - 1),
            *flags]  # fmt: skip
    t0 = time.perf_counter()
    with (folder / f"{name}.log").open("w") as log:
        code = subprocess.run(
            argv,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(FMNIST_SEARCH_FAULTS=faults),
        ).returncode
    return {
        "exit_code": code,
        "wall_seconds": time.perf_counter() - t0,
        "log_tail": (folder / f"{name}.log").read_text()[-800:],
    }


def _trials(folder: Path, name: str):

    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder}/{name}.db").trials


def single_worker(device: str, budget: Budget, data_dir, out: Path) -> dict[str, Any]:
    """Six finished trials in one worker; trials 1 and 3 fail (error, OOM) on the way."""
    preset = _preset(out, "single", budget, n_trials=6, device=device)
    flags = ["--device", device] + (["--data-dir", data_dir] if data_dir else [])
    run = _run(out, "single", preset, SINGLE_FAULTS, *flags)
    trials = _trials(out, "single")
    after_oom = next((t for t in trials if t.number == 4), None)
    return run | {
        "states": {t.number: t.state.name for t in trials},
        "cuda_bytes_after": [t.user_attrs.get("cuda_bytes_after") for t in trials],
        "post_fit_seconds": [t.user_attrs.get("post_fit_seconds") for t in trials],
        "trial_after_oom": {
            "state": after_oom.state.name,
            "val_acc": after_oom.value,
            "cuda_bytes_after": after_oom.user_attrs.get("cuda_bytes_after"),
        }
        if after_oom
        else None,
    }


def packed(device: str, budget: Budget, data_dir, out: Path) -> dict[str, Any]:
    """Packed workers on the device; trial 1's worker SIGKILLed after its first epoch."""
    preset = _preset(out, "packed", budget, n_trials=budget.packed_trials, device=device)
    k = budget.packed_workers
    if device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        flags = ["--gpus", index, "--workers-per-gpu", str(k)]
    else:
        flags = ["--workers", str(k), "--device", device]
    flags += ["--data-dir", data_dir] if data_dir else []
    run = _run(out, "packed", preset, KILLED, *flags)
    trials = _trials(out, "packed")
    retries = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    return run | {
        "workers": k,
        "states": {t.number: t.state.name for t in trials},
        "killed_trial": next((t.state.name for t in trials if t.number == 1), None),
        "retry": {
            "number": retries[0].number,
            "state": retries[0].state.name,
            "resumed_from": retries[0].user_attrs.get("resumed_from"),
            "trained_epochs": retries[0].user_attrs.get("trained_epochs"),
        }
        if retries
        else None,
        "threads": sorted({t.user_attrs.get("threads", 0) for t in trials}),
    }


def threads(budget: Budget, data_dir) -> Any:
    if not budget.thread_images:
        return {"skipped": "tiny budget"}

    return grid(images=budget.thread_images, data_dir=data_dir)


CSV_FIELDS = ("study", "number", "state", "epochs", "epoch_seconds", "wall_seconds",
              "post_fit_seconds", "cuda_bytes_after", "max_rss_mb", "device", "precision",
              "threads", "fail_reason", "failure", "retry_chain", "resumed_from")  # fmt: skip


def trial_rows(out: Path) -> list[dict[str, Any]]:

    rows = []
    for name in ("single", "packed"):
        if not (out / f"{name}.db").is_file():
            continue

        study = optuna.load_study(study_name=name, storage=f"sqlite:///{out}/{name}.db")
        for t in study.trials:
            a = t.user_attrs
            wall = (
                (t.datetime_complete - t.datetime_start).total_seconds()
                if t.datetime_complete and t.datetime_start
                else None
            )
            rows.append(
                {
                    "study": name,
                    "number": t.number,
                    "state": t.state.name,
                    "epochs": len(a.get("trained_epochs", [])),
                    "epoch_seconds": ";".join(f"{s:.3f}" for s in a.get("epoch_seconds", [])),
                    "wall_seconds": wall,
                    "post_fit_seconds": a.get("post_fit_seconds"),
                    "cuda_bytes_after": a.get("cuda_bytes_after"),
                    "max_rss_mb": a.get("max_rss_mb"),
                    "device": a.get("device"),
                    "precision": a.get("precision"),
                    "threads": a.get("threads"),
                    "fail_reason": a.get("fail_reason"),
                    "failure": a.get("failure"),
                    "retry_chain": ">".join(map(str, retry_chain(study, t))),
                    "resumed_from": json.dumps(a["resumed_from"]) if "resumed_from" in a else None,
                }
            )
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
