"""A study stores everything that makes its trials comparable, and `run` refuses to resume it
with any of that changed, naming the key with both values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from search.errors import SearchError
from search.run.options import RunOptions
from search.run.plan import make_plan
from search.run.stored import open_study
from search.study import resolve

CHANGES = [
    ("epochs", {"epochs": 3}, "epochs=2"),
    ("subset", {"subset": 400}, "subset=500"),
    ("val_size", {"val_size": 600}, "val_size=500"),
    ("split_seed", {"split_seed": 1}, "split_seed=0"),
    ("base", {"base": {"precision": "32", "optim": {"momentum": 0.5}}}, "base="),
    ("ranges", {"ranges": {"optim.lr": {"low": 1e-3, "high": 0.1}}}, "ranges="),
    ("fixed", {"fixed": {"aug.flip_p": 0.5}}, "fixed="),
    ("constraints", {"constraints": {"max_params": 100_000}}, "constraints="),
    ("space", {"space": "vgg", "ranges": None}, "space='resnet'"),
]


def _open(path: Path, tmp_path: Path, data_dir: Path) -> optuna.Study:
    url = f"sqlite:///{tmp_path}/s.db"
    opts = RunOptions(study=str(path), storage=url, data_dir=data_dir, out_dir=str(tmp_path))
    return open_study(make_plan(opts, resolve(str(path))), url)[0]


@pytest.mark.parametrize(
    ("changes", "names"), [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES]
)
def test_resume_refuses_what_makes_trials_incomparable(
    changes: dict, names: str, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    path = tiny_preset(tmp_path / "same.toml")
    _open(path, tmp_path, data_dir)
    _open(path, tmp_path, data_dir)  # the same preset resumes
    tiny_preset(path, **changes)
    with pytest.raises(SearchError) as e:
        _open(path, tmp_path, data_dir)
    assert names in str(e.value) and "this preset gives" in str(e.value)


def test_an_old_study_without_an_attribute_is_reported(
    tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    path = tiny_preset(tmp_path / "old.toml")
    stored = _open(path, tmp_path, data_dir)
    stored._storage.set_study_user_attr(stored._study_id, "ranges", None)  # as if never stored
    with pytest.raises(SearchError, match="ranges=None"):
        _open(path, tmp_path, data_dir)


def test_resume_names_every_differing_key_in_one_line(
    tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    path = tiny_preset(tmp_path / "two.toml")
    _open(path, tmp_path, data_dir)
    tiny_preset(path, epochs=3, subset=400)
    with pytest.raises(SearchError) as e:
        _open(path, tmp_path, data_dir)
    (line,) = str(e.value).splitlines()
    assert "was made with epochs=2, subset=500; this preset gives epochs=3, subset=400" in line
