"""Pareto studies: accuracy against parameters, still stopped early by the equal-epoch rule;
the front in `show`, `export --pareto`, and a model card per point."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import tomli_w
from optuna.trial import FrozenTrial, TrialState

from fmnist.config import RunConfig, dump_toml, from_dict, load_toml, replace, stretch
from search.errors import SearchError
from search.pruners import CURVE, EQUAL_EPOCH
from search.study import resolve
from search.study.objectives import front
from search.trials import epoch_accuracies, was_rejected

# Two sizes of 4-wide ResNet (1 or 2 blocks a stage: 1.4k and 2.9k parameters) on 200 images,
# 2 epochs: one rung, at epoch 1, where a trial must be in the better half of the no-larger
# trials that got there.
PARETO: dict[str, Any] = {
    "space": "resnet",
    "objectives": ["val_acc", "params"],
    "epochs": 2,
    "subset": 200,
    "val_size": 100,
    "n_trials": 6,
    "sampler": {"name": "tpe", "seed": 0, "options": {"n_startup_trials": 3}},
    "pruner": {
        "name": EQUAL_EPOCH,
        "options": {"min_resource": 1, "reduction_factor": 2, "min_peers": 1},
    },
    "ranges": {
        "resnet.intro_kernel": [3],
        "resnet.stages": [2],
        "resnet.blocks": [1, 2],
        "optim.batch_size": [64],
        "optim.lr": {"low": 3e-3, "high": 3e-2},
    },
    # Below the space's widths: [fixed] may hold a parameter outside the space, [ranges] not.
    "fixed": {"resnet.intro_width": 4, "resnet.width": 4},
    "base": {"precision": "32", "channels_last": False},
}


def dominates(a: FrozenTrial, b: FrozenTrial) -> bool:
    (acc_a, cost_a), (acc_b, cost_b) = a.values, b.values
    return acc_a >= acc_b and cost_a <= cost_b and (acc_a, cost_a) != (acc_b, cost_b)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reduction_factor": 1}, "reduction_factor"),
        ({"min_resource": 0}, "min_resource"),
        ({"min_peers": 0}, "min_peers"),
        ({"patience": 3}, "patience"),
    ],
)
def test_bad_rule_options_name_themselves(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(PARETO | {"pruner": {"name": EQUAL_EPOCH, "options": options}}))
    with pytest.raises(SearchError, match=f"pruner.options.*{message}"):
        resolve(str(path))


BAD = [
    ("optuna-pruner", {"pruner": {"name": "hyperband"}}, "cannot prune a multi-objective"),
    ("old-sha-spelling", {"pruner": {"name": "sha"}}, 'write name = "equal-epoch"'),
    ("accuracy-not-first", {"objectives": ["params", "val_acc"]}, "first objective"),
    ("unknown-objective", {"objectives": ["val_acc", "flops"]}, "unknown objective 'flops'"),
    ("objective-twice", {"objectives": ["val_acc", "params", "params"]}, "listed twice"),
    ("cmaes", {"sampler": {"name": "cmaes"}}, "cmaes handles neither"),
]


@pytest.mark.parametrize(("changes", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_pareto_preset_names_the_key(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(PARETO | changes))
    with pytest.raises(SearchError) as e:
        resolve(str(path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_pareto_preset_is_multi_objective_and_stopped_by_the_rule() -> None:
    study = resolve("pareto")
    preset = study.preset
    assert study.is_pareto and preset.objectives == ["val_acc", "params"]
    assert study.pruning.rule is not None
    assert preset.pruner.name == EQUAL_EPOCH and preset.constraints.limits() == {
        "params": 1_000_000
    }
    assert preset.spaces == ["resnet", "mobilenet"]


# A Pareto study, end to end, run once for the tests below.


@dataclass(frozen=True)
class ParetoStudy:
    url: str
    out: str

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name="pareto-tiny", storage=self.url)


@pytest.fixture(scope="module")
def pareto_study(
    cli: Callable, tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> ParetoStudy:
    root = tmp_path_factory.mktemp("pareto")
    path = root / "pareto-tiny.toml"
    path.write_text(tomli_w.dumps(PARETO))
    url = f"sqlite:///{root}/s.db"
    result = cli(
        "run", "--study", path, "--storage", url, "--out", root / "runs", "--data-dir", data_dir
    )
    assert result.code == 0, result.err
    return ParetoStudy(url, result.out)


@pytest.mark.slow
def test_pareto_study_has_a_non_dominated_front(pareto_study: ParetoStudy) -> None:
    study = pareto_study.load()
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_acc", "params"]
    points = study.best_trials
    assert points and front(study) == sorted(
        points, key=lambda t: (t.values[1], -t.values[0], t.number)
    )
    for a in points:
        assert a.state == TrialState.COMPLETE
        assert a.values[1] == a.user_attrs["params"]
        assert a.values[0] == a.user_attrs[CURVE][-1]
        assert not any(dominates(b, a) for b in points)
    # Everything off the front is dominated by a point on it.
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert t in points or any(dominates(p, t) for p in points)


@pytest.mark.slow
def test_pareto_trials_are_still_stopped_early(pareto_study: ParetoStudy) -> None:
    study = pareto_study.load()
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) == 6
    stopped = [t for t in trials if t.state == TrialState.PRUNED and not was_rejected(t)]
    assert stopped, "the equal-epoch rule should have stopped at least one trial"
    for t in stopped:
        assert len(epoch_accuracies(t)) == 1  # stopped at the rung, epoch 1 of 2
        assert t.intermediate_values == {} and t.values is None
        # It was in the worse half of the trials no larger than itself at epoch 1.
        acc, params = t.user_attrs[CURVE][0], t.user_attrs["params"]
        peers = [
            o.user_attrs[CURVE][0]
            for o in trials
            if o.number < t.number and o.user_attrs["params"] <= params
        ]
        assert sum(p > acc for p in peers) >= max(1, (len(peers) + 1) // 2)
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert len(epoch_accuracies(t)) == 2


@pytest.mark.slow
def test_show_lists_the_pareto_front(cli: Callable, pareto_study: ParetoStudy) -> None:
    study = pareto_study.load()
    result = cli("show", "--study", "pareto-tiny", "--storage", pareto_study.url)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Pareto front of study"))
    assert "(val_acc max, params min)" in lines[title]
    rows = [line.split() for line in lines[title + 2 : title + 2 + len(study.best_trials)]]
    assert [int(r[0]) for r in rows] == [t.number for t in front(study)]
    assert [r[2] for r in rows] == [f"{t.user_attrs['params']:,}" for t in front(study)]
    assert "pruning: " in result.out and "finished trials pruned" in result.out


@pytest.mark.slow
def test_export_pareto_writes_one_config_per_point_that_train_reads(
    cli: Callable, pareto_study: ParetoStudy, tmp_path: Path, data_dir: Path
) -> None:
    study = pareto_study.load()
    out = tmp_path / "front"
    result = cli("export", "--study", "pareto-tiny", "--storage", pareto_study.url, "--pareto",
                 "-o", out)  # fmt: skip
    assert result.code == 0, result.err
    points = front(study)
    assert sorted(out.iterdir()) == [out / f"trial-{t.number:04d}.toml" for t in points]
    for t in points:
        config, provenance = load_toml(out / f"trial-{t.number:04d}.toml")
        assert config == replace(from_dict(RunConfig, t.user_attrs["config"]), epochs=2)
        assert (provenance["trial"], provenance["val_acc"]) == (t.number, t.values[0])
        assert (provenance["params"], provenance["macs"]) == (
            t.user_attrs["params"],
            t.user_attrs["macs"],
        )

    cheapest = out / f"trial-{points[0].number:04d}.toml"
    run = tmp_path / "train"
    trained = cli("train", "--config", cheapest, "--epochs", 2, "--out", run,
                  "--data-dir", data_dir, "--device", "cpu")  # fmt: skip
    assert trained.code == 0, trained.err
    metrics = json.loads((run / "metrics.json").read_text())
    exported, provenance = load_toml(cheapest)
    assert from_dict(RunConfig, metrics["config"]) == replace(exported, epochs=2)
    assert metrics["params"] == provenance["params"]
    assert metrics["split_fingerprint"] == provenance["split_fingerprint"]


@pytest.mark.slow
def test_export_pareto_and_trial_together_is_an_error(
    cli: Callable, pareto_study: ParetoStudy, tmp_path: Path
) -> None:
    result = cli("export", "--study", "pareto-tiny", "--storage", pareto_study.url, "--pareto",
                 "--trial", 0, "-o", tmp_path / "f")  # fmt: skip
    assert result.code == 2 and "not both" in result.error


@pytest.mark.slow
def test_retrain_card_sets_accuracy_params_and_latency_side_by_side(
    cli: Callable, pareto_study: ParetoStudy, tmp_path: Path, data_dir: Path
) -> None:
    point = front(pareto_study.load())[0]
    path = tmp_path / "point.toml"
    assert cli("export", "--study", "pareto-tiny", "--storage", pareto_study.url,
               "--trial", point.number, "-o", path).code == 0  # fmt: skip
    config, provenance = load_toml(path)
    quick = tmp_path / "quick.toml"
    quick.write_text(dump_toml(replace(stretch(config, 1), **{"data.subset": 200}), provenance))
    out = tmp_path / "retrain"
    result = cli("retrain", quick, "--seeds", 1, "--storage", pareto_study.url, "--out", out,
                 "--data-dir", data_dir, "--device", "cpu")  # fmt: skip
    assert result.code == 0, result.err
    card = json.loads((out / "model_card.json").read_text())
    assert card["params"] == point.user_attrs["params"] and card["cpu_latency_ms"] > 0
    markdown = (out / "model_card.md").read_text()
    assert "| test accuracy | parameters | CPU latency, batch 1 |" in markdown
    acc = card["test_acc"]
    assert (
        f"| {acc['mean']:.4f} +- {acc['std']:.4f} | {card['params']:,} "
        f"| {card['cpu_latency_ms']:.2f} ms |"
    ) in markdown
