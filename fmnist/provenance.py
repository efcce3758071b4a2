"""Where a result came from: package versions, source commit, machine."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "lightning", "optuna", "optuna-integration", "sqlalchemy")


@functools.cache
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


COMMIT_ENV = "FMNIST_SOURCE_COMMIT"  # the commit of code shipped without its .git (Ray nodes)


@functools.cache
def git_commit() -> str:
    """The source tree's commit, with '+dirty' when it has uncommitted changes; ``$COMMIT_ENV``
    where the code was shipped from a checkout that is not here."""
    if shipped := os.environ.get(COMMIT_ENV):
        return shipped
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def device_name(device: str) -> str:
    import torch  # heavy: provenance's other facts are read without it

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
