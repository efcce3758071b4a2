"""The study's lockbox ledger: every test-set opening for a config from a study is recorded on
that study; an exported config reopens its study from another folder; a study out of reach is
one line before anything trains."""

from __future__ import annotations

import json
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from fmnist.config import RunConfig, load_toml
from search.storage import open_storage
from search.storage.reference import PASSWORD_ENV, reference, study_of
from search.study import lockbox
from tests.testing import SERVERS, free_port, unreachable


def _study(tmp_path: Path) -> tuple[str, optuna.Study]:
    url = f"sqlite:///{tmp_path}/ledger.db"
    return url, optuna.create_study(study_name="ledger", storage=url)


def test_each_opening_is_its_own_entry_with_time_config_and_reason(tmp_path: Path) -> None:
    _, study = _study(tmp_path)
    assert lockbox.openings(study) == []
    assert lockbox.record(study, RunConfig(seed=1), reason="retrain seed 1") == 1
    assert lockbox.record(study, RunConfig(seed=2), reason="retrain seed 2") == 2
    first, second = lockbox.openings(study)
    assert (first["seed"], first["reason"]) == (1, "retrain seed 1")
    assert first["config"] == lockbox.fingerprint(RunConfig(seed=1)) != second["config"]
    assert "opened 2 time(s)" in lockbox.summary(study)


def test_unreachable_study_is_one_line_before_training(
    cli: Callable, tmp_path: Path, data_dir: Path
) -> None:
    config = tmp_path / "exported.toml"
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    config.write_text(
        'epochs = 1\n[data]\nsubset = 200\nval_size = 100\n[model]\nfamily = "resnet"\n'
        f'[provenance]\nstudy = "gone"\ntrial = 0\nstorage = "{url}"\n'
    )
    out = tmp_path / "retrain"
    r = cli("retrain", config, "--seeds", 1, "--out", out, "--data-dir", data_dir)
    assert r.code == 2 and "pass --storage" in r.error and "gone" not in r.out
    assert not out.exists()  # refused before anything trained


@pytest.mark.slow
def test_exported_config_records_its_openings_on_the_study(
    cli: Callable, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    preset = tiny_preset(tmp_path / "led.toml", n_trials=1, epochs=1)
    run = cli("run", "--study", preset, "--storage", "sqlite:///s.db", "--data-dir", data_dir)
    assert run.code == 0, run.err
    export = cli("export", "--study", "led", "--storage", "sqlite:///s.db", "-o", "best.toml")
    assert export.code == 0, export.err
    provenance = tomllib.loads((tmp_path / "best.toml").read_text())["provenance"]
    assert provenance["storage"] == f"sqlite:///{tmp_path}/s.db"  # absolute, reopenable

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no --storage: the config's reference finds the study
    for n in (1, 2):
        r = cli(
            "train", "--config", tmp_path / "best.toml", "--evaluate-test", "--subset", 200,
            "--out", elsewhere / f"t{n}", "--data-dir", data_dir,
        )  # fmt: skip
        assert r.code == 0, r.err
        assert f"{n} in all on study 'led'" in r.out
    show = cli("show", "--study", "led", "--storage", f"sqlite:///{tmp_path}/s.db")
    assert "opened 2 time(s)" in show.out


# A config that names no study: its openings go in a ledger file beside its outputs.

NO_STUDY = """epochs = 1
[data]
subset = 200
val_size = 100
[model]
family = "resnet"
intro_width = 4
widths = [4, 8]
blocks = [1, 1]
strides = [2, 2]
"""


def test_a_file_ledger_counts_openings_and_names_itself(tmp_path: Path) -> None:
    ledger = lockbox.ledger(study_of({}, None), tmp_path / "run")
    assert ledger.study is None and ledger.count() == 0
    assert ledger.record(RunConfig(seed=3), reason="a") == 1
    assert ledger.record(RunConfig(seed=4), reason="b") == 2
    assert ledger.where() == str(tmp_path / "run" / lockbox.LEDGER_FILE)
    again = lockbox.ledger(None, tmp_path / "run")  # another run into the same folder
    assert again.count() == 2 and again.record(RunConfig(), reason="c") == 3


@pytest.mark.slow
def test_a_config_without_a_study_records_its_opening_before_the_score(
    cli: Callable, tmp_path: Path, data_dir: Path
) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(NO_STUDY)
    out = tmp_path / "run"
    args = ("train", "--config", config, "--evaluate-test", "--out", out, "--device", "cpu")
    r = cli(*args, "--data-dir", data_dir)
    assert r.code == 0, r.err
    assert f"test lockbox opened once; 1 in all on {out / lockbox.LEDGER_FILE}" in r.out
    # Training files only: the test set cannot be read, so no score is ever computed, and
    # the opening was still recorded, because it was recorded first.
    partial = tmp_path / "train-only"
    partial.mkdir()
    for f in data_dir.glob("train-*"):
        (partial / f.name).symlink_to(f)
    r = cli(*args, "--data-dir", partial)
    assert r.code == 2 and "no Fashion-MNIST test files" in r.error, r.err
    (first, second) = [json.loads(line) for line in (out / lockbox.LEDGER_FILE).open()]
    assert first["reason"] == second["reason"] == f"train --evaluate-test {out}"
    assert first["config"] == second["config"] == lockbox.fingerprint(load_toml(config)[0])


@pytest.mark.slow
def test_a_retrain_without_a_study_says_where_its_openings_are(
    cli: Callable, tmp_path: Path, data_dir: Path
) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(NO_STUDY)
    out = tmp_path / "retrain"
    r = cli("retrain", config, "--seeds", 2, "--subset", 200, "--out", out, "--data-dir", data_dir,
            "--device", "cpu")  # fmt: skip
    assert r.code == 0, r.err
    card = json.loads((out / "model_card.json").read_text())
    ledger = str(out / lockbox.LEDGER_FILE)
    assert card["lockbox"] | {"storage": None} == {
        "openings_this_retrain": 2, "openings_on_study": None, "openings_in_file": 2,
        "file": ledger, "study": None, "storage": None,
    }  # fmt: skip
    text = (out / "model_card.md").read_text()
    assert f"| 2 by this retrain; 2 in all in {ledger} (the config names no study) |" in text


# Storage references: the scheme kept, the password never written, and reopenable with it.


@pytest.mark.parametrize(
    ("url", "ref"),
    [
        ("redis://:secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://me:secret@db:6379/2", "redis://me:***@db:6379/2"),
        ("redis://db:6379/0", "redis://db:6379/0"),
        ("postgresql+psycopg://me:secret@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
    ],
)
def test_a_reference_keeps_the_scheme_and_drops_the_password(url: str, ref: str) -> None:
    assert reference(url) == ref


@pytest.mark.parametrize("kind", ["postgresql", "redis"])
def test_a_server_reference_with_a_password_reopens_its_study(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"lockbox-{uuid.uuid4().hex[:10]}"
    if (why := unreachable(kind)) is not None:
        pytest.skip(why)
    if kind == "postgresql":  # the local server trusts, so any password is let in
        url, cleanup = f"postgresql+psycopg://postgres:s3cret@{SERVERS[kind].split('@')[1]}", None
    else:  # a Redis user of its own with a password, removed afterwards
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379)
        client.execute_command("ACL", "SETUSER", name, "on", ">s3cret", "~*", "&*", "+@all")
        url, cleanup = f"redis://{name}:s3cret@127.0.0.1:6379/0", lambda: client.acl_deluser(name)
    study = optuna.create_study(study_name=name, storage=open_storage(url))
    try:
        ref = reference(url)
        assert "s3cret" not in ref and ref.startswith(url.split(":", 1)[0] + "://")
        provenance = {"study": name, "trial": 0, "storage": ref}
        monkeypatch.setenv(PASSWORD_ENV, "s3cret")
        found = study_of(provenance, None)
        assert found.study_name == name
        lockbox.record(found, RunConfig(), reason="test")
        assert len(lockbox.openings(study)) == 1  # the same study, seen from its creator
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(url))
        if cleanup is not None:
            cleanup()
