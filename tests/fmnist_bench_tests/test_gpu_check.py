"""The GPU check's CPU mode: every step runs, and what it writes says what happened."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from fmnist_bench.gpu_check import BUDGETS, CSV_FIELDS, CheckOptions, check


@pytest.mark.slow  # six trials, two packed workers with a SIGKILL: minutes on a loaded CPU
def test_the_cpu_mode_runs_every_step(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "check"
    threads, env = torch.get_num_threads(), os.environ.get("FMNIST_SEARCH_THREADS")
    report = check(CheckOptions(out, device="cpu", budget="tiny", data_dir=str(data_dir)))
    # Its one thread per process was this check's only: the suite after it trains as before.
    assert (torch.get_num_threads(), os.environ.get("FMNIST_SEARCH_THREADS")) == (threads, env)
    written = json.loads((out / "gpu-check.json").read_text())
    assert written["seconds"] == report["seconds"]
    assert not [k for k, v in report.items() if isinstance(v, dict) and "error" in v], report
    assert set(report["epoch_seconds"]) == {"vgg", "resnet", "mobilenet"}
    assert all(r["seconds_per_60k"] > 0 for r in report["epoch_seconds"].values())
    # Timed on the budget's images, not on all 60k (a full-train config drops a subset).
    tiny = BUDGETS["tiny"].pace_images
    assert all(r["images_per_epoch"] == tiny for r in report["epoch_seconds"].values())

    single = report["single_worker"]
    assert single["exit_code"] == 0, single["log_tail"]
    assert single["states"][1] == single["states"][3] == "FAIL"
    assert single["trial_after_oom"]["state"] == "COMPLETE"
    assert sum(s == "COMPLETE" for s in single["states"].values()) == 6
    assert all(s is not None for s in single["post_fit_seconds"][4:])

    packed = report["packed"]
    assert packed["killed_trial"] == "FAIL"
    assert packed["retry"]["state"] == "COMPLETE"
    assert packed["retry"]["resumed_from"] == {"trial": 1, "epochs_done": 1}
    assert packed["retry"]["trained_epochs"] == [1]  # epoch 0 came from the checkpoint

    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_FIELDS
    assert len(rows) == len(single["states"]) + len(packed["states"])
    retry = next(r for r in rows if r["study"] == "packed" and r["retry_chain"] == "1")
    assert retry["state"] == "COMPLETE" and retry["device"] and retry["precision"]
    failed = [r for r in rows if r["study"] == "single" and r["state"] == "FAIL"]
    assert {r["fail_reason"].split(":")[0] for r in failed} == {"RuntimeError", "OutOfMemoryError"}
