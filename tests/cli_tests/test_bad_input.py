"""Every user mistake, run as a real process: one line ``fmnist-search: error: ...`` on
stderr naming the value, no traceback, exit status 2.

A case is a row ``(id, argv, text the line must contain)``. ``{tmp}`` in argv or text is the
test's folder, which holds FILES; add rows (and files) for any command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# Files a row can name as {tmp}/NAME: a folder when the content is None.
FILES: dict[str, bytes | None] = {
    "folder.toml": None,
    "latin1.toml": "epochs = 3\n# caf\xe9\n".encode("latin-1"),
    "a-file": b"not a folder\n",
    "batch0.toml": b"[optim]\nbatch_size = 0\n",
    "lr0.toml": b"[optim]\nlr = 0.0\n",
    "epochs0-warmup.toml": b"epochs = 0\n[optim]\nwarmup_epochs = 1.0\n",
    "warmup-too-long.toml": b"epochs = 2\n[optim]\nwarmup_epochs = 3.0\n",
    "flip.toml": b"[augment]\nflip_p = 1.5\n",
    "dropout.toml": b'[model]\nfamily = "vgg"\ndropout = 1.0\n',
}

TRAIN = ["train", "--device", "cpu", "--out", "{tmp}/run"]

ROWS: list[tuple[str, list[str], str]] = [
    ("train-config-folder", [*TRAIN, "--config", "{tmp}/folder.toml"], "is a folder"),
    ("train-config-not-utf8", [*TRAIN, "--config", "{tmp}/latin1.toml"], "not UTF-8"),
    ("train-device-foo", ["train", "--config", "resnet", "--device", "foo"], "'foo'"),
    ("train-device-cuda7", ["train", "--config", "resnet", "--device", "cuda:7"], "'cuda:7'"),
    ("train-batch-size-0", [*TRAIN, "--config", "{tmp}/batch0.toml"], "optim.batch_size = 0"),
    ("train-lr-0", [*TRAIN, "--config", "{tmp}/lr0.toml"], "optim.lr = 0.0"),
    ("train-epochs-0", [*TRAIN, "--config", "{tmp}/epochs0-warmup.toml"], "epochs = 0"),
    (
        "train-warmup-too-long",
        [*TRAIN, "--config", "{tmp}/warmup-too-long.toml"],
        "optim.warmup_epochs = 3.0 is longer than epochs = 2",
    ),
    ("train-epochs-flag", [*TRAIN, "--config", "resnet", "--epochs", "-1"], "epochs = -1"),
    ("train-subset-flag", [*TRAIN, "--config", "resnet", "--subset", "-5"], "data.subset = -5"),
    ("train-flip-p", [*TRAIN, "--config", "{tmp}/flip.toml"], "augment.flip_p = 1.5"),
    ("train-dropout", [*TRAIN, "--config", "{tmp}/dropout.toml"], "model.dropout = 1.0"),
    (
        "train-out-is-a-file",
        ["train", "--config", "resnet", "--device", "cpu", "--out", "{tmp}/a-file"],
        "{tmp}/a-file is an existing file",
    ),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad-input")
    for name, content in FILES.items():
        if content is None:
            (path / name).mkdir()
        else:
            (path / name).write_bytes(content)
    return path


@pytest.fixture(scope="module")
def finished(folder: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every row's process, run a few at a time: most of each one's time is importing."""

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "search.cli", *(a.format(tmp=folder) for a in argv)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=folder,
            env=os.environ | {"PYTHONWARNINGS": "ignore"},
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(run, [argv for _, argv, _ in ROWS])
        return dict(zip([row_id for row_id, _, _ in ROWS], done, strict=True))


@pytest.mark.parametrize(("row_id", "text"), [(r[0], r[2]) for r in ROWS], ids=[r[0] for r in ROWS])
def test_one_line_no_traceback_exit_2(
    finished: dict[str, subprocess.CompletedProcess[str]], folder: Path, row_id: str, text: str
) -> None:
    done = finished[row_id]
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fmnist-search: error: "), done.stderr
    assert text.format(tmp=folder) in lines[0]
    assert done.returncode == 2
