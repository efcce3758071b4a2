"""The suite runs torch on one thread per process (tests/conftest.py says why), and the
workers a test starts inherit it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch


@pytest.mark.skipif(os.environ.get("OMP_NUM_THREADS", "1") != "1", reason="the user's own")
def test_the_suite_and_the_workers_it_starts_run_torch_on_one_thread() -> None:
    assert torch.get_num_threads() == 1
    child = "import torch; print(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
