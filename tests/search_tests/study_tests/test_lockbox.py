"""The study's lockbox ledger: every test-set opening for a config from a study is recorded on
that study; an exported config reopens its study from another folder; a study out of reach is
one line before anything trains."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from fmnist.config import RunConfig
from search.study import lockbox
from tests.testing import free_port


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
