"""`run` decides once: its plan is stored on the study, survives JSON without loss, and is all
a worker needs to join (no preset file, no options argv); a resume names what it changes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from search.errors import SearchError
from search.flags import SEED_MAX
from search.run.join import join
from search.run.options import RunOptions
from search.run.plan import RunPlan, make_plan, stored_plan
from search.run.stored import open_study
from search.study import resolve
from tests.testing import load


def _plan(path: Path, tmp_path: Path, data_dir: Path, **opts) -> tuple[RunPlan, str]:
    url = f"sqlite:///{tmp_path}/s.db"
    options = RunOptions(
        study=str(path), storage=url, data_dir=str(data_dir), out_dir=str(tmp_path), **opts
    )
    return make_plan(options, resolve(str(path))), url


def test_a_worker_joins_from_the_stored_plan_alone(
    tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    path = tiny_preset(tmp_path / "joined.toml")
    plan, url = _plan(
        path, tmp_path, data_dir, n_trials=7, timeout=60.0, seed=5, grace_s=9.0, storage_retry_s=5.0
    )
    assert RunPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan  # lossless
    assert plan.deadline == pytest.approx(time.time() + 60.0, abs=5)  # wall clock, fixed now
    open_study(plan, url)
    path.unlink()  # a worker never reads the preset file
    joined, stored = join(url, "joined", 2)
    assert joined == plan
    assert joined.study.attrs("f") == plan.study.attrs("f")  # the same study, from the text
    seed = plan.sampler_seed(2, 0)  # seeded apart from worker 0, which takes the plan's 5
    assert seed != 5 and stored.sampler._rng.rng.randint(1 << 30) == (
        optuna.samplers.TPESampler(seed=seed)._rng.rng.randint(1 << 30)
    )


def test_each_process_and_each_rerun_draws_its_own_seed(
    tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    plan, _ = _plan(tiny_preset(tmp_path / "seeds.toml"), tmp_path, data_dir, seed=5)
    assert plan.sampler_seed(0, 0) == 5  # a fresh study's first process: the preset's seed
    seeds = {plan.sampler_seed(i, n) for i in range(8) for n in (0, 1, 2, 10, 1000)}
    assert len(seeds) == 40 and all(0 <= s <= SEED_MAX for s in seeds)
    assert plan.sampler_seed(3, 10) == plan.sampler_seed(3, 10)  # a rerun of it replays it


@pytest.mark.slow
def test_a_rerun_of_a_random_search_draws_new_configs(
    cli, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    """Seeded as the first run, a second run's random sampler would replay its draws: the
    same configs trained twice (as ``auto``'s second search share did, on the bench)."""
    preset = tiny_preset(tmp_path / "rand.toml", epochs=1, sampler={"name": "random", "seed": 0})
    url = f"sqlite:///{tmp_path}/s.db"
    flags = ["--study", preset, "--storage", url, "--out", tmp_path / "runs",
             "--data-dir", data_dir, "--device", "cpu"]  # fmt: skip
    assert cli("run", *flags, "--n-trials", 2).code == 0
    assert cli("run", *flags, "--n-trials", 4).code == 0
    params = [tuple(sorted(t.params.items())) for t in load(url, "rand").trials]
    assert len(params) == 4 and len(set(params)) == 4


def test_a_resume_names_each_change_of_plan_with_both_values(
    tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    path = tiny_preset(tmp_path / "changed.toml")
    plan, url = _plan(path, tmp_path, data_dir)
    assert open_study(plan, url)[1] == []
    assert open_study(plan.with_timeout(None), url)[1] == []  # the same command again
    tiny_preset(path, sampler={"name": "random", "seed": 0})
    again, _ = _plan(path, tmp_path, data_dir, n_trials=9, workers=2)
    _, changes = open_study(again, url)
    assert changes == [
        "preset.sampler.name: 'tpe' -> 'random'",
        "n_trials: 4 -> 9",
        "placement.workers: 1 -> 2",
    ]
    assert stored_plan(optuna.load_study(study_name="changed", storage=url)) == again


def test_a_study_without_a_readable_plan_cannot_be_joined(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bare.db"
    bare = optuna.create_study(study_name="bare", storage=url)
    with pytest.raises(SearchError, match="'bare' .* has no run plan to join"):
        join(url, "bare", 0)
    bare.set_user_attr("run_plan", {"preset": "space = 'vgg'"})  # another version's plan
    assert stored_plan(bare) is None
    with pytest.raises(SearchError, match="or one of another version"):
        join(url, "bare", 0)
