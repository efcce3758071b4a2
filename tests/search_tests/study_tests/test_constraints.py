"""Size and latency budgets: checked before training, learned by the sampler, pruning kept;
and a study over two model families (how `small` and `tiny` span ResNets and MobileNets)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import tomli_w
import torch
from optuna.trial import FrozenTrial, TrialState

import spaces
from fmnist.config import ResNetConfig
from fmnist.models import build_model, count_params
from fmnist.models.measure import cpu_latency_ms
from search.errors import SearchError
from search.study import resolve
from search.study.constraints import REJECTED, Constraints, check, violations
from search.trials import rejected_in_a_row, was_rejected

# The `tiny.toml` of the fault suite with a budget that half its ResNets break (4 wide: 1.4k
# parameters, 8 wide: 4.8k) and every MobileNet breaks; median-pruned, as `quick` is.
CONSTRAINED: dict[str, Any] = {
    "spaces": ["resnet", "mobilenet"],
    "epochs": 2,
    "subset": 200,
    "val_size": 100,
    "n_trials": 4,
    "constraints": {"max_params": 3000, "max_latency_ms": 1000.0},
    "sampler": {"name": "tpe", "seed": 0, "options": {"n_startup_trials": 2, "group": True}},
    "pruner": {"name": "median", "options": {"n_startup_trials": 1, "n_warmup_steps": 0}},
    "ranges": {
        "resnet.intro_width": [4],
        "resnet.width": [4, 8],
        "resnet.stages": [2],
        "resnet.blocks": [1],
        "mobilenet.width_mult": [0.35],
        "optim.batch_size": [64],
        "optim.lr": {"low": 3e-3, "high": 3e-2},
    },
    "base": {"precision": "32", "channels_last": False},
}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(data))
    return path


# Budgets on their own.


def test_limits_skip_unset_budgets() -> None:
    assert Constraints().limits() == {}
    assert Constraints(max_params=1000, max_latency_ms=2.5).limits() == {
        "params": 1000,
        "latency_ms": 2.5,
    }


def test_violations_are_relative_excess() -> None:
    c = Constraints(max_params=1000, max_macs=10_000)
    v = violations(c, {"params": 1500, "macs": 5000, "latency_ms": 9.0})
    assert v == pytest.approx({"params": 0.5, "macs": -0.5})


def test_check_sets_optuna_constraints_and_the_reason() -> None:
    study = optuna.create_study()
    over, within = study.ask(), study.ask()
    c = Constraints(max_params=1000)
    assert check(over, c, {"params": 2000, "macs": 1}) == "params 2,000 > 1,000"
    assert check(within, c, {"params": 500, "macs": 1}) == ""
    study.tell(over, state=TrialState.PRUNED)
    study.tell(within, 0.5)
    first, second = study.trials
    assert first.constraints == {"params": 1.0} and first.user_attrs[REJECTED].endswith("1,000")
    assert second.constraints == {"params": -0.5} and not was_rejected(second)


def test_rejections_in_a_row_stop_at_a_trained_trial() -> None:
    def trial(rejected: bool, state=TrialState.PRUNED) -> FrozenTrial:
        attrs = {REJECTED: "over budget"} if rejected else {}
        values = None if state != TrialState.COMPLETE else [0.5]
        return optuna.trial.create_trial(state=state, values=values, user_attrs=attrs)

    trials = [trial(True), trial(False, TrialState.COMPLETE), trial(True), trial(True)]
    for number, t in enumerate(trials):
        t.number = number
    assert rejected_in_a_row(trials) == 2
    assert rejected_in_a_row(trials[:2]) == 0


def test_cpu_latency_is_timed_on_one_thread_and_leaves_the_model_as_it_was() -> None:
    model = build_model(ResNetConfig(intro_width=8, widths=(8, 16), blocks=(1, 1), strides=(2, 2)))
    threads = torch.get_num_threads()
    ms = cpu_latency_ms(model, seconds=0.05)
    assert 0 < ms < 10_000
    assert model.training and torch.get_num_threads() == threads


# Presets.


@pytest.mark.parametrize(
    ("name", "max_params", "families"),
    [("small", 1_000_000, ["resnet", "mobilenet"]), ("tiny", 100_000, ["resnet", "mobilenet"])],
)
def test_small_and_tiny_presets_state_their_budgets(
    name: str, max_params: int, families: list[str]
) -> None:
    study = resolve(name)
    preset = study.preset
    assert preset.constraints.limits() == {"params": max_params}
    assert preset.spaces == families and preset.space == "+".join(families)
    assert not study.is_pareto
    space, dims = study.space, study.dims
    seen = set()
    for params in preset.baseline:  # the baselines fit the budget: validation checks it too
        values = {n: d.default for n, d in dims.items()} | params
        config = space.build(values.__getitem__, study.base)
        assert count_params(build_model(config.model)) <= max_params
        seen.add(config.model.family)
    assert seen == set(families)


BAD = [
    ("space-and-spaces", {"space": "resnet"}, "either space = NAME or spaces"),
    ("no-space", {"spaces": None}, "either space = NAME or spaces"),
    ("one-of-spaces", {"spaces": ["resnet"]}, "spaces: list two or more"),
    ("unknown-in-spaces", {"spaces": ["resnet", "alexnet"]}, "'alexnet'"),
    ("negative-budget", {"constraints": {"max_params": -1}}, "constraints.max_params"),
    ("unknown-budget", {"constraints": {"max_flops": 1}}, "'constraints.max_flops'"),
    ("cmaes-with-budget", {"sampler": {"name": "cmaes"}}, "cmaes handles neither"),
    ("baseline-over-budget",
     {"baseline": [{"space": "resnet", "resnet.width": 8}]}, "baseline[0]: params 4,842"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_constrained_preset_names_the_key(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    data = {k: v for k, v in (CONSTRAINED | changes).items() if v is not None}
    path = write(tmp_path / "bad.toml", data)
    with pytest.raises(SearchError) as e:
        resolve(str(path))
    assert message in str(e.value) and "\n" not in str(e.value)


# Two families in one study.


def test_two_spaces_make_one_with_a_space_parameter_first() -> None:
    both = spaces.combine(["resnet", "mobilenet"])
    assert both.name == "resnet+mobilenet" and both.family == "resnet"
    assert next(iter(both.dims)) == spaces.CHOICE
    assert both.dims[spaces.CHOICE].choices == ("resnet", "mobilenet")
    assert both.version == spaces.get("resnet").version + spaces.get("mobilenet").version
    assert set(both.dims) == {spaces.CHOICE} | set(spaces.get("resnet").dims) | set(
        spaces.get("mobilenet").dims
    )
    base = resolve("small").base
    for family in ("resnet", "mobilenet"):
        asked: list[str] = []

        def sample(name: str, family: str = family, asked: list[str] = asked) -> Any:
            asked.append(name)
            return family if name == spaces.CHOICE else both.dims[name].default

        assert both.build(sample, base).model.family == family
        assert asked[0] == spaces.CHOICE
        other = {"resnet": "mobilenet.", "mobilenet": "resnet."}[family]
        assert not any(n.startswith(other) for n in asked)  # define-by-run: one branch only


def test_combining_a_space_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="two or more different"):
        spaces.combine(["resnet", "resnet"])


# A constrained study, end to end.


def trials_of(url: str, name: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


@pytest.mark.slow
def test_constrained_study_never_trains_an_over_budget_config_and_still_prunes(
    cli: Callable, tmp_path: Path, data_dir: Path
) -> None:
    path = write(tmp_path / "budget.toml", CONSTRAINED)
    url = f"sqlite:///{tmp_path}/s.db"
    out = tmp_path / "runs"
    result = cli("run", "--study", path, "--storage", url, "--out", out, "--data-dir", data_dir)
    assert result.code == 0, result.err

    trials = trials_of(url, "budget")
    rejected = [t for t in trials if was_rejected(t)]
    trained = [t for t in trials if not was_rejected(t)]
    assert rejected, "the budget should have turned some configs away"
    for t in rejected:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["params"] > 3000 and t.constraints["params"] > 0
        assert t.intermediate_values == {}  # 0 epochs: nothing reported ...
        assert "trained_epochs" not in t.user_attrs  # ... nothing trained ...
        assert not (out / "ckpt" / "budget" / f"trial-{t.number:04d}").exists()  # ... or saved
        (line,) = [x for x in result.out.splitlines() if x.startswith(f"trial {t.number:4d}")]
        assert "REJECTED" in line and "params" in line
    # n_trials counts trained trials; each stayed within budget and was timed.
    assert len(trained) == 4 and all(t.state.is_finished() for t in trained)
    for t in trained:
        assert t.user_attrs["params"] <= 3000 and t.params["space"] == "resnet"
        assert t.constraints["params"] <= 0 and t.constraints["latency_ms"] <= 0
        assert 0 < t.user_attrs["latency_ms"] < 1000
        assert len(t.intermediate_values) >= 1
    # Pruning still works: some trial was stopped by the median pruner after training.
    assert any(t.state == TrialState.PRUNED for t in trained)

    show = cli("show", "--study", "budget", "--storage", url)
    assert show.code == 0, show.err
    assert f"constraints: {len(rejected)} configs rejected over budget, 0 epochs trained" in (
        show.out.splitlines()
    )
    epochs = sum(len(t.intermediate_values) for t in trained)
    assert f"{epochs} epochs trained vs {2 * len(trained)} without pruning" in show.out


@pytest.mark.slow
def test_a_budget_nothing_fits_stops_with_one_line(
    cli: Callable, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("search.storage.claim.REJECTIONS_IN_A_ROW", 3)
    data = CONSTRAINED | {"constraints": {"max_params": 10}}
    data["baseline"] = []
    path = write(tmp_path / "hopeless.toml", data)
    url = f"sqlite:///{tmp_path}/s.db"
    result = cli("run", "--study", path, "--storage", url, "--data-dir", data_dir)
    assert result.code == 2
    assert "the last 3 configs were all over the [constraints] budget" in result.error
    trials = trials_of(url, "hopeless")
    assert len(trials) == 3 and all(was_rejected(t) for t in trials)
