from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.trial import TrialState
from optuna_dashboard.artifact._backend import list_trial_artifacts

from fmnist.config import RunConfig, from_dict, load_toml
from search.errors import SearchError
from search.results.artifacts import (
    CONFIG,
    CONFUSION,
    CURVES,
    attach_to_trial,
    record_trial,
)
from search.storage.artifact_folder import artifacts_dir, default_dir
from search.storage.reference import reference, study_of
from tests.testing import QuickStudy

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        ("sqlite:////srv/studies/x.db", "/srv/studies/artifacts"),
        ("sqlite:///runs/fmnist-search.db", "runs/artifacts"),
        (None, "runs/artifacts"),
        ("sqlite:///:memory:", "runs/artifacts"),
        ("postgresql+psycopg://u:p@db/fmnist", "runs/artifacts"),
        ("redis://127.0.0.1:6379/0", "runs/artifacts"),
    ],
)
def test_the_store_sits_beside_the_storage(url: str | None, folder: str) -> None:
    assert default_dir(url) == Path(folder)


def test_a_run_on_a_server_keeps_the_store_under_its_out_folder() -> None:
    assert default_dir("redis://db:6379/0", "/srv/runs") == Path("/srv/runs/artifacts")
    assert default_dir("sqlite:////srv/x.db", "/srv/runs") == Path("/srv/artifacts")


@pytest.mark.slow
def test_every_trial_uploads_what_it_has(quick_study: QuickStudy, tmp_path: Path) -> None:
    study = quick_study.load()
    store = FileSystemArtifactStore(default_dir(quick_study.url))
    trained = [t for t in study.trials if t.intermediate_values]
    assert {t.state for t in trained} == {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in trained:
        metas = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
        want = {CONFIG, CURVES} | ({CONFUSION} if trial.state == TrialState.COMPLETE else set())
        assert set(metas) == want, trial.number
        for name, meta in metas.items():
            path = tmp_path / f"{trial.number}-{name}"
            download_artifact(
                artifact_store=store, file_path=str(path), artifact_id=meta.artifact_id
            )
            if name == CONFIG:
                config, provenance = load_toml(path)
                assert config == from_dict(RunConfig, trial.user_attrs["config"])
                # It names its storage exactly, not "whichever quick study is under ./runs".
                ref = reference(quick_study.url)
                assert provenance == {"study": "quick", "trial": trial.number, "storage": ref}
                assert ref.startswith("sqlite:////")
                assert study_of(provenance, None)._study_id == study._study_id
                assert meta.mimetype == "text/plain"
            else:
                assert path.read_bytes().startswith(PNG) and meta.mimetype == "image/png"
        assert "artifacts_error" not in trial.user_attrs


def test_an_upload_failure_never_fails_the_trial(tiny_config: RunConfig, tmp_path: Path) -> None:
    study = optuna.create_study()
    trial = study.ask()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert record_trial(trial, blocked, None, tiny_config) == []
    assert trial.user_attrs["artifacts_error"].startswith("FileExistsError")
    assert record_trial(trial, None, None, tiny_config) == []  # no store: nothing to do


def test_a_model_card_is_attached_to_its_finished_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="s", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    card = tmp_path / "retrain" / "model_card.md"
    card.parent.mkdir()
    card.write_text("# Model card\n")
    (card.parent / "model_card.json").write_text(json.dumps({"params": 1}))
    paths = [card, card.parent / "model_card.json"]

    study = study_of({"study": "s", "trial": 1, "storage": url}, None)
    folder = artifacts_dir(None, url)
    attach_to_trial(study, 1, paths, folder)

    assert folder == tmp_path / "artifacts"
    study = optuna.load_study(study_name="s", storage=url)
    names = {m.filename for m in get_all_artifact_meta(study)}
    assert names == {"trial-0001-model_card.md", "trial-0001-model_card.json"}
    # optuna-dashboard lists them on the trial's own page too, and only there
    storage, (first, second) = study._storage, study.trials
    attrs = storage.get_study_system_attrs(study._study_id)
    shown = list_trial_artifacts(attrs, storage.get_trial_system_attrs(second._trial_id), second)
    assert {a["filename"] for a in shown} == names
    assert not list_trial_artifacts(attrs, storage.get_trial_system_attrs(first._trial_id), first)
    meta = next(m for m in get_all_artifact_meta(study) if m.filename.endswith(".md"))
    assert (folder / meta.artifact_id).read_text() == "# Model card\n"


def test_a_card_without_a_study_stays_a_file_and_an_unreachable_one_is_an_error(
    tmp_path: Path,
) -> None:
    # Since the lockbox ledger (7521ff8) a card is attached to the study its config names, and
    # a study out of reach is one line before anything trains, no longer a silent file.
    assert study_of({}, None) is None
    masked = {"study": "s", "trial": 0, "storage": "postgresql://u:***@db/x"}
    missing = {"study": "nope", "trial": 0, "storage": f"sqlite:///{tmp_path}/s.db"}
    for provenance, says in [(masked, "password is not stored"), (missing, "cannot record")]:
        with pytest.raises(SearchError, match=says) as e:
            study_of(provenance, None)
        assert "\n" not in str(e.value)
