from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

import spaces
from fmnist.config import RunConfig, from_dict
from fmnist.data import load_train
from fmnist.models import build_model, count_macs, count_params
from fmnist.split import make_split
from search.auto.pipeline import continue_cut
from search.run.faults import ENV as FAULTS
from search.storage.liveness import RETRY_OF
from search.study import resolve
from search.trials import ranked
from tests.testing import QUICK_IN_TESTS, CliResult, QuickStudy

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TRIAL_ATTRS = {
    "config",
    "params",
    "macs",
    "seed",
    "device",
    "packages",
    "git_commit",
    "log_dir",
    "epoch_seconds",
}


def finished(url: str, name: str = "tiny") -> list[FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(states=FINISHED)


def snapshot(trials: list[FrozenTrial]) -> list[tuple]:
    """What a finished trial must keep forever, resumes and interruptions included."""
    return [
        (t.number, t.state, t.params, t.value, t.intermediate_values, t.datetime_complete)
        for t in trials
    ]


# The `quick` study, run once per session through the CLI.


def test_quick_runs_eight_trials_and_prunes(quick_study: QuickStudy) -> None:
    trials = quick_study.load().get_trials()
    states = Counter(t.state for t in trials)
    assert len(trials) >= 8
    assert set(states) <= set(FINISHED), states
    assert states[TrialState.PRUNED] >= 1


def test_quick_trial_value_is_its_last_epoch(quick_study: QuickStudy) -> None:
    study = quick_study.load()
    budget = study.user_attrs["epochs"]
    for t in study.get_trials():
        steps = t.intermediate_values
        assert sorted(steps) == list(range(len(steps)))  # one report per epoch, from epoch 0
        if t.state == TrialState.COMPLETE:
            assert len(steps) == budget
            assert t.value == steps[budget - 1]
            assert t.user_attrs["best_val_acc"] == max(steps.values())
            assert steps[t.user_attrs["best_epoch"]] == max(steps.values())
        else:
            assert len(steps) < budget  # pruned before the budget was spent


def test_quick_trials_carry_their_provenance(quick_study: QuickStudy) -> None:
    study = quick_study.load()
    for t in study.get_trials():
        assert TRIAL_ATTRS <= set(t.user_attrs), (t.number, TRIAL_ATTRS - set(t.user_attrs))
        a = t.user_attrs
        config = from_dict(RunConfig, a["config"])
        assert (config.epochs, config.data.subset, config.data.val_size) == (
            resolve("quick").preset.epochs,
            QUICK_IN_TESTS["subset"],
            QUICK_IN_TESTS["val_size"],
        )
        assert a["seed"] == config.seed == t.number  # the preset's seed 0 plus the trial number
        model = build_model(config.model)
        assert (a["params"], a["macs"]) == (count_params(model), count_macs(model))
        assert {"torch", "lightning", "optuna"} <= set(a["packages"])
        assert isinstance(a["git_commit"], str) and a["git_commit"]
        assert Path(a["log_dir"]) == quick_study.runs / "tb" / "quick" / f"trial-{t.number:04d}"
        assert any(Path(a["log_dir"]).glob("events.out.tfevents.*"))
        assert len(a["epoch_seconds"]) == len(t.intermediate_values)
        assert all(s > 0 for s in a["epoch_seconds"])
        if t.state == TrialState.COMPLETE:
            assert a["split_fingerprint"] == study.user_attrs["split_fingerprint"]


def test_quick_pruned_trials_carry_the_split_fingerprint(quick_study: QuickStudy) -> None:
    study = quick_study.load()
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned
    for t in pruned:
        assert t.user_attrs.get("split_fingerprint") == study.user_attrs["split_fingerprint"]


def test_quick_study_records_split_and_space(quick_study: QuickStudy, data_dir: Path) -> None:
    attrs = quick_study.load().user_attrs
    _, labels = load_train(data_dir)
    assert attrs["split_fingerprint"] == make_split(labels, 1000, 0).fingerprint
    quick = resolve("quick").preset
    assert attrs["space"] == quick.space
    assert attrs["space_version"] == spaces.get(quick.space).version
    assert attrs["epochs"] == quick.epochs


def test_quick_prints_a_line_per_trial_and_the_top_five(quick_study: QuickStudy) -> None:
    study = quick_study.load()
    lines, budget = quick_study.out.splitlines(), study.user_attrs["epochs"]
    for t in study.get_trials():
        (line,) = [line for line in lines if line.startswith(f"trial {t.number:4d}  params")]
        assert t.state.name in line and f"epoch {len(t.intermediate_values):3d}/{budget}" in line
    best = ranked(study)[:5]  # the top five, or every complete trial where fewer
    header = lines.index(f"top {len(best)} of study 'quick' (validation accuracy, last epoch):")
    # A row's values may wrap onto lines of their own, which start with spaces and a name.
    rows = [row for row in lines[header + 2 :] if re.match(r" *\d+ ", row)][: len(best)]
    assert [int(row.split()[0]) for row in rows] == [t.number for t in best]
    assert [float(row.split()[1]) for row in rows] == [round(t.value, 4) for t in best]


# Resume: `--n-trials` is the total the study should reach.


def run_tiny(cli, preset: Path, url: str, data_dir: Path, *extra) -> CliResult:
    return cli(
        "run", "--study", preset, "--storage", url, "--out", preset.parent / "runs",
        "--data-dir", data_dir, "--device", "cpu", *extra,
    )  # fmt: skip


def test_rerun_runs_only_what_is_missing(
    cli, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    preset, url = tiny_preset(tmp_path / "tiny.toml"), f"sqlite:///{tmp_path}/s.db"
    assert run_tiny(cli, preset, url, data_dir, "--n-trials", 2).code == 0
    first = finished(url)
    assert len(first) == 2

    result = run_tiny(cli, preset, url, data_dir, "--n-trials", 4)
    assert result.code == 0
    assert "2 of 4 trials to run" in result.out
    after = finished(url)
    assert len(after) == 4 and len({t.number for t in after}) == 4
    assert snapshot(after[:2]) == snapshot(first)

    result = run_tiny(cli, preset, url, data_dir, "--n-trials", 4)
    assert result.code == 0
    assert "already has 4 finished trials" in result.out
    assert snapshot(optuna.load_study(study_name="tiny", storage=url).get_trials()) == snapshot(
        after
    )


def test_the_timeout_stops_a_running_trial_at_its_epoch_end(
    cli, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """A search for N seconds lasts N seconds plus at most one epoch: the trial running when
    the timeout passes is pruned at its epoch's end, with its curve kept, and none follows."""
    preset, url = tiny_preset(tmp_path / "tiny.toml", epochs=3), f"sqlite:///{tmp_path}/s.db"
    monkeypatch.setenv("FMNIST_SEARCH_FAULTS", "slow@0")  # epoch 0 outlasts the timeout
    result = run_tiny(cli, preset, url, data_dir, "--timeout", 1)
    assert result.code == 0, result.err
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert [t.state for t in trials] == [TrialState.PRUNED]
    assert trials[0].user_attrs["stopped_by"] == "timeout"
    assert list(trials[0].intermediate_values) == [0]  # epoch 0 validated and kept
    assert "the study's timeout passed" in result.out


def test_a_trial_the_timeout_cut_can_go_on_from_that_epoch(
    cli, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """``auto``'s first search share ends with a timeout, which cuts the running trial; the
    cut trial keeps the checkpoint of the epoch it stopped at, and its continuation in the next
    run trains only the epochs it lacked, with its parameters and curve."""
    preset, url = tiny_preset(tmp_path / "tiny.toml", epochs=3), f"sqlite:///{tmp_path}/s.db"
    monkeypatch.setenv(FAULTS, "slow@0")  # epoch 0 outlasts the timeout
    assert run_tiny(cli, preset, url, data_dir, "--timeout", 1).code == 0
    ckpt = tmp_path / "runs" / "ckpt" / "tiny" / "trial-0000" / "last.ckpt"
    assert ckpt.is_file()  # kept, though the trial is pruned: it may be continued
    study = optuna.load_study(study_name="tiny", storage=url)
    assert continue_cut(study) == [0]
    assert continue_cut(study) == []  # queued once
    monkeypatch.delenv(FAULTS)

    assert run_tiny(cli, preset, url, data_dir, "--n-trials", 2).code == 0
    cut, went_on = optuna.load_study(study_name="tiny", storage=url).trials
    assert (cut.state, went_on.state) == (TrialState.PRUNED, TrialState.COMPLETE)
    assert went_on.user_attrs[RETRY_OF] == 0 and went_on.params == cut.params
    assert went_on.user_attrs["resumed_from"] == {"trial": 0, "epochs_done": 1}
    assert went_on.user_attrs["trained_epochs"] == [1, 2]
    assert went_on.intermediate_values[0] == cut.intermediate_values[0]
    assert not ckpt.exists()  # continued, it is dropped as any pruned trial's


def wait_until(condition: Callable[[], bool], process, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.1)


def test_ctrl_c_leaves_the_study_resumable(
    cli, command, spawn, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path
) -> None:
    # Three epochs: a trial lasts long enough to be caught running.
    preset = tiny_preset(tmp_path / "tiny.toml", epochs=3)
    url = f"sqlite:///{tmp_path}/s.db"
    args = (
        "run", "--study", preset, "--storage", url, "--out", "runs", "--data-dir", data_dir,
        "--device", "cpu",
    )  # fmt: skip
    process = spawn(command(*args, "--n-trials", 3))
    # Touch the storage only once the run has made it, so its schema is not raced.
    wait_until(
        lambda: "trials to run" in (tmp_path / "stdout.txt").read_text(), process, 120, "study"
    )

    study = optuna.load_study(study_name="tiny", storage=url)  # one connection, not one a poll

    def one_finished_one_training() -> bool:
        trials = study.get_trials()
        running = [t for t in trials if t.state == TrialState.RUNNING]
        return any(t.state in FINISHED for t in trials) and any(
            "log_dir" in t.user_attrs for t in running
        )

    wait_until(one_finished_one_training, process, 120, "trial in training")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) != 0
    error = (tmp_path / "stderr.txt").read_text().strip().splitlines()[-1]
    assert error.startswith("fmnist-search: error: interrupted by SIGINT")
    assert "rerun" in error

    trials = optuna.load_study(study_name="tiny", storage=url).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert "SIGINT" in failed.user_attrs["fail_reason"]
    (retry,) = [t for t in trials if t.state == TrialState.WAITING]  # queued, not sampled anew
    assert retry.user_attrs["retry_of"] == failed.number
    assert retry.system_attrs["fixed_params"] == failed.params  # the same config, to resume
    assert failed.number == max(t.number for t in trials if t is not retry)
    before = [t for t in trials if t.state in FINISHED]
    assert 1 <= len(before) < 3

    assert cli(*args, "--n-trials", 3).code == 0
    trials = optuna.load_study(study_name="tiny", storage=url).get_trials()
    after = [t for t in trials if t.state in FINISHED]
    assert len(after) == 3
    assert snapshot(after[: len(before)]) == snapshot(before)
    assert all(t.number > failed.number for t in after[len(before) :])
    assert retry.number in {t.number for t in after}  # the stopped trial was trained again
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [failed.number]


@pytest.fixture(scope="module")
def tiny_study(
    cli,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_preset: Callable[..., Path],
    data_dir: Path,
) -> str:
    """A storage holding study 'tiny' with one finished trial."""
    root = tmp_path_factory.mktemp("tiny")
    url = f"sqlite:///{root}/s.db"
    preset = tiny_preset(root / "tiny.toml")
    assert run_tiny(cli, preset, url, data_dir, "--n-trials", 1).code == 0
    return url


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"val_size": 600}, "val_size"),
        ({"split_seed": 1}, "split_seed"),
        ({"space": "vgg", "ranges": None}, "space"),
    ],
    ids=["val_size", "split_seed", "space"],
)
def test_resume_refuses_another_split_or_space(
    cli,
    tiny_study: str,
    tiny_preset: Callable[..., Path],
    tmp_path: Path,
    data_dir: Path,
    changes: dict,
    key: str,
) -> None:
    preset = tiny_preset(tmp_path / "other.toml", **changes)
    before = snapshot(optuna.load_study(study_name="tiny", storage=tiny_study).get_trials())
    result = run_tiny(cli, preset, tiny_study, data_dir, "--study-name", "tiny")
    assert result.code == 2
    assert f"was made with {key}=" in result.error and "--study-name" in result.error
    after = optuna.load_study(study_name="tiny", storage=tiny_study).get_trials()
    assert snapshot(after) == before


# A diverging loss fails its trial, not the study.

DIVERGING = {  # the fault injector's ``nan`` makes these diverge; SGD keeps them diverged
    "sampler": {"name": "random", "seed": 0},
    "fixed": {"optim.optimizer": "sgd", "optim.schedule": "constant"},
}


@pytest.fixture(scope="module")
def diverged_once(
    cli,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_preset: Callable[..., Path],
    data_dir: Path,
) -> tuple[str, CliResult]:
    """A study whose first (enqueued) trial diverges and whose next ones are sane. A learning
    rate that diverges is outside the space, which [ranges] cannot widen for one trial: the
    fault injector's ``nan`` poisons trial 0's weights, so its loss diverges for real."""
    root = tmp_path_factory.mktemp("diverge")
    preset = tiny_preset(
        root / "tiny.toml",
        n_trials=2,
        ranges={"optim.lr": [1e-3]},
        baseline=[{"optim.lr": 1e-3}],
        **DIVERGING,
    )
    url = f"sqlite:///{root}/s.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAULTS, "nan@0")
        return url, run_tiny(cli, preset, url, data_dir)


def test_a_diverging_trial_fails_with_its_reason(diverged_once: tuple[str, CliResult]) -> None:
    url, result = diverged_once
    assert result.code == 0, result.err
    trials = optuna.load_study(study_name="tiny", storage=url).get_trials()
    assert trials[0].state == TrialState.FAIL
    reason = trials[0].user_attrs["fail_reason"]
    assert "loss" in reason and ("nan" in reason or "inf" in reason)
    assert reason in result.out  # on the trial's console line too
    assert trials[1].state == TrialState.COMPLETE  # the study went on


def test_a_failed_trial_does_not_count_towards_the_total(
    diverged_once: tuple[str, CliResult],
) -> None:
    url, _ = diverged_once
    trials = optuna.load_study(study_name="tiny", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]


def test_three_failures_in_a_row_stop_the_run(
    cli, tiny_preset: Callable[..., Path], tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """Every trial diverges for real: the fault injector poisons each one's weights (a huge
    learning rate alone left one of these tiny nets at a finite loss on some runs)."""
    preset = tiny_preset(tmp_path / "tiny.toml", n_trials=6, **DIVERGING)
    url = f"sqlite:///{tmp_path}/s.db"
    monkeypatch.setenv(FAULTS, "nan@*")
    result = run_tiny(cli, preset, url, data_dir)
    assert result.code == 2
    assert result.error.startswith("fmnist-search: error: 3 trials failed in a row, the last with")
    assert "loss" in result.error
    trials = optuna.load_study(study_name="tiny", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all("loss" in t.user_attrs["fail_reason"] for t in trials)
