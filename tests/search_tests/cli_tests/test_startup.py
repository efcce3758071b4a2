"""What a command loads before it answers. torch and Lightning cost seconds of start-up on
2 cores (Lightning alone 8.9 s by ``-X importtime`` on an AVX2 EPYC), paid by every process:
``--help`` and a refused flag load neither, and the launcher of ``run --workers K`` (one more
process beside its K workers) loads torch but not Lightning. Only a process that trains loads
Lightning."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testing import CliResult, run_process

TORCH = {"torch", "torchvision"}
LIGHTNING = {"lightning", "lightning_fabric", "torchmetrics", "pytorch_lightning"}


def loaded(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[CliResult, set]:
    """``fmnist-search ARGS`` as a process under ``PYTHONPROFILEIMPORTTIME``: its result (the
    timing lines taken out of its stderr) and the top-level packages it imported."""
    result = run_process(*args, cwd=cwd, env={"PYTHONPROFILEIMPORTTIME": "1"} | (env or {}))
    lines = result.err.splitlines()
    timed = [line for line in lines if line.startswith("import time:")]
    packages = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in timed}
    err = "".join(f"{line}\n" for line in lines if not line.startswith("import time:"))
    return CliResult(result.code, result.out, err, result.prog), packages


@pytest.mark.parametrize(
    "args",
    [["--help"], ["run", "--help"], ["run", "--study", "resnett"], ["auto", "--budget", "1x"]],
    ids=["help", "run-help", "unknown-study", "bad-budget"],
)
def test_help_and_a_refused_flag_load_neither_torch_nor_lightning(args, tmp_path: Path) -> None:
    result, packages = loaded(*args, cwd=tmp_path)
    assert {"search", "optuna"} <= packages  # the timing lines were read
    assert result.code == (0 if "--help" in args else 2), result.err
    assert not packages & (TORCH | LIGHTNING), sorted(packages & (TORCH | LIGHTNING))


def test_the_launcher_of_workers_does_not_load_lightning(tmp_path: Path) -> None:
    """Refused at its last check before the study opens (``--gpus`` on a machine that shows
    no GPU): by then the launcher has imported every module it runs."""
    result, packages = loaded(
        *("run", "--study", "quick", "--gpus", "0"),
        cwd=tmp_path,
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.code == 2 and "leaves no GPU" in result.err, result.err
    assert {"search", "optuna"} <= packages
    assert not packages & LIGHTNING, sorted(packages & LIGHTNING)
