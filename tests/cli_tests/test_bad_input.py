"""Every user mistake, run as a process of its own: one line ``fmnist-search: error: ...``
on stderr naming the value, no traceback, no warning, exit status 2.

A case is a row ``(id, argv, text the line must contain)``. ``{tmp}`` in argv or text is the
test's folder, which holds FILES; add rows (and files) for any command.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from fmnist.config import RunConfig, to_dict
from search.storage import open_storage
from tests.testing import environment

# A process per row, all forked from one import of the CLI: seconds on 2 cores.
pytestmark = pytest.mark.slow

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
    "no-trial.toml": b'epochs = 1\n[provenance]\nstudy = "quick"\n',
    "resnet.toml": b"epochs = 1\n[data]\nsubset = 200\nval_size = 100\n",
    "wide.toml": b'space = "vgg"\n[ranges]\n"vgg.width" = [16, 128]\n',
}
# A study for the commands that read one: created by the fixture in {tmp}/s.db.
STUDY = ["--study", "known", "--storage", "sqlite:///{tmp}/s.db"]
RUN = ["run", "--study", "quick", "--storage", "sqlite:///{tmp}/r.db", "--device", "cpu"]

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
    ("train-seed-negative", [*TRAIN, "--config", "resnet", "--seed", "-1"], "--seed: '-1'"),
    ("retrain-seeds-0", ["retrain", "{tmp}/resnet.toml", "--seeds", "0"], "--seeds: '0'"),
    ("retrain-study-no-trial", ["retrain", "{tmp}/no-trial.toml", "--seeds", "1"], "no trial"),
    ("run-no-study", ["run"], "required: --study"),
    ("run-gpus-not-numbers", [*RUN, "--gpus", "0,a"], "--gpus: '0,a'"),
    ("run-n-trials-0", [*RUN, "--n-trials", "0"], "--n-trials: '0'"),
    ("run-workers-per-gpu-0", [*RUN, "--workers-per-gpu", "0"], "--workers-per-gpu: '0'"),
    ("run-timeout-abc", [*RUN, "--timeout", "abc"], "--timeout: 'abc' is not a number"),
    ("run-timeout-nan", [*RUN, "--timeout", "nan"], "--timeout: 'nan' is not a finite number"),
    ("run-seed-negative", [*RUN, "--seed", "-1"], "--seed: '-1' is out of range"),
    (
        "run-grace-within-retry",
        [*RUN, "--heartbeat-grace", "60"],
        "--heartbeat-grace 60 must be longer than --storage-retry 120",
    ),
    (
        "run-ranges-outside-space",
        ["run", "--study", "{tmp}/wide.toml", "--storage", "sqlite:///{tmp}/r.db"],
        "ranges.vgg.width = [16, 128]: 128 is outside the space's {{16, 24, 32, 64}}",
    ),
    ("run-out-is-a-file", [*RUN, "--out", "{tmp}/a-file"], "--out {tmp}/a-file is a file"),
    ("auto-budget-words", ["auto", "--budget", "a while"], "--budget: 'a while'"),
    (
        "auto-out-is-a-file",
        ["auto", "--budget", "1m", "--out", "{tmp}/a-file"],
        "--out {tmp}/a-file is a file",
    ),
    ("report-unwritable", ["report", *STUDY, "-o", "{tmp}/a-file/report"], "cannot write"),
    ("export-unwritable", ["export", *STUDY, "-o", "{tmp}/a-file/best.toml"], "cannot write"),
    (
        "studies-missing-folder",
        ["studies", "--storage", "sqlite:///{tmp}/nowhere/s.db"],
        "no storage at sqlite:///{tmp}/nowhere/s.db",
    ),
    ("show-top-negative", ["show", *STUDY, "--top", "-1"], "--top: '-1' is out of range"),
    ("dashboard-port-taken", ["dashboard", "--port", "{port}"], "--port {port}"),
    ("unknown-command", ["serve"], "invalid choice: 'serve'"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad-input")
    # Opened as every command opens it (in WAL mode), before the rows open it all at once:
    # switching a file to WAL needs it alone, which a row beside the others may not get.
    study = optuna.create_study(study_name="known", storage=open_storage(f"sqlite:///{path}/s.db"))
    config = {"config": to_dict(RunConfig())}  # what a trial of a search carries
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs=config))
    for name, content in FILES.items():
        if content is None:
            (path / name).mkdir()
        else:
            (path / name).write_bytes(content)
    return path


@pytest.fixture(scope="module")
def held_port() -> Iterator[int]:
    """A port this test holds open, for the command that must find it taken."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@dataclass(frozen=True)
class Done:
    returncode: int
    stderr: str


@pytest.fixture(scope="module")
def finished(
    folder: Path, held_port: int, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Done]:
    """Every row's process, forked from one that imported the CLI once (``forked.py``): the
    import is most of each one's time."""
    results = tmp_path_factory.mktemp("bad-input-results")
    argvs = [[a.format(tmp=folder, port=held_port) for a in argv] for _, argv, _ in ROWS]
    # Python's own warning filters, as a user has them: a warning is a second line.
    env = {k: v for k, v in environment().items() if k != "PYTHONWARNINGS"}
    parent = subprocess.run(
        [sys.executable, "-m", "tests.cli_tests.forked", str(results)],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
        env=env,
    )
    # The import, common to every row, prints nothing either (no warning, no traceback).
    assert parent.returncode == 0 and parent.stderr == "", parent.stderr
    return {
        row_id: Done(int((results / f"{i}.code").read_text()), (results / f"{i}.err").read_text())
        for i, (row_id, _, _) in enumerate(ROWS)
    }


@pytest.mark.parametrize(("row_id", "text"), [(r[0], r[2]) for r in ROWS], ids=[r[0] for r in ROWS])
def test_one_line_no_traceback_exit_2(
    finished: dict[str, Done],
    folder: Path,
    held_port: int,
    row_id: str,
    text: str,
) -> None:
    done = finished[row_id]
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fmnist-search: error: "), done.stderr
    assert text.format(tmp=folder, port=held_port) in lines[0]
    assert done.returncode == 2
