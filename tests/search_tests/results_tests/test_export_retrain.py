from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import FrozenTrial, TrialState

from fmnist.config import RunConfig, dump_toml, from_dict, full_train_config, load_toml, replace
from search.results.gap import describe, val_to_test
from search.study import lockbox, resolve
from search.trials import ranked
from tests.testing import QuickStudy

pytestmark = pytest.mark.slow


def stored_config(trial: FrozenTrial) -> RunConfig:
    return from_dict(RunConfig, trial.user_attrs["config"])


def export(cli, quick_study: QuickStudy, path: Path, *extra) -> Path:
    result = cli("export", "--study", "quick", "--storage", quick_study.url, "-o", path, *extra)
    assert result.code == 0, result.err
    assert f"wrote {path}" in result.out
    return path


def test_export_writes_the_best_trial_config(cli, quick_study: QuickStudy, tmp_path: Path) -> None:
    study = quick_study.load()
    best = ranked(study)[0]
    config, provenance = load_toml(export(cli, quick_study, tmp_path / "best.toml"))
    assert config == replace(stored_config(best), epochs=study.user_attrs["epochs"])
    assert config.epochs == resolve("quick").preset.epochs
    assert provenance["study"] == "quick"
    assert provenance["trial"] == best.number
    assert provenance["val_acc"] == best.value
    assert provenance["split_fingerprint"] == study.user_attrs["split_fingerprint"]
    assert provenance["state"] == "COMPLETE"


@pytest.mark.parametrize("state", [TrialState.PRUNED, TrialState.COMPLETE])
def test_export_a_chosen_trial(
    cli, quick_study: QuickStudy, tmp_path: Path, state: TrialState
) -> None:
    study = quick_study.load()
    chosen = (
        ranked(study)[-1] if state == TrialState.COMPLETE else study.get_trials(states=(state,))[0]
    )
    assert chosen.number != ranked(study)[0].number
    path = export(cli, quick_study, tmp_path / "chosen.toml", "--trial", chosen.number)
    config, provenance = load_toml(path)
    # A pruned trial's config asks for the budget it would have trained.
    assert config == replace(stored_config(chosen), epochs=study.user_attrs["epochs"])
    assert provenance["trial"] == chosen.number and provenance["state"] == state.name
    last = chosen.intermediate_values[max(chosen.intermediate_values)]
    assert provenance["val_acc"] == last


def test_exported_config_needs_no_optuna(cli, quick_study: QuickStudy, tmp_path: Path) -> None:
    path = export(cli, quick_study, tmp_path / "best.toml")
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "from fmnist.config import load_toml\n"
        f"config, provenance = load_toml({str(path)!r})\n"
        "print(config.model.family, provenance['study'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [resolve("quick").preset.space, "quick"]


def test_train_accepts_the_export_unchanged(
    cli, quick_study: QuickStudy, tmp_path: Path, data_dir: Path
) -> None:
    path = export(cli, quick_study, tmp_path / "best.toml")
    exported, provenance = load_toml(path)
    out = tmp_path / "train"
    result = cli(
        "train", "--config", path, "--epochs", 1, "--subset", 500, "--out", out,
        "--data-dir", data_dir, "--device", "cpu",
    )  # fmt: skip
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert from_dict(RunConfig, metrics["config"]) == replace(
        exported, **{"epochs": 1, "data.subset": 500}
    )
    assert metrics["provenance"] == provenance
    # The run validates on the very split the search scored it on.
    assert metrics["split_fingerprint"] == provenance["split_fingerprint"]
    assert metrics["test_acc"] is None


@pytest.mark.parametrize(
    ("trial", "message"), [("999", "has no trial 999"), ("-1", "--trial: '-1' is out of range")]
)
def test_export_of_a_missing_trial_fails(
    cli, quick_study: QuickStudy, tmp_path: Path, trial: str, message: str
) -> None:
    result = cli(
        "export", "--study", "quick", "--storage", quick_study.url, "--trial", trial,
        "-o", tmp_path / "x.toml",
    )  # fmt: skip
    assert result.code == 2
    assert message in result.error
    assert not (tmp_path / "x.toml").exists()


def test_retrain_writes_a_model_card_and_counts_the_lockbox(
    cli, quick_study: QuickStudy, tmp_path: Path, data_dir: Path
) -> None:
    exported, provenance = load_toml(export(cli, quick_study, tmp_path / "best.toml"))
    tiny = replace(exported, **{"data.subset": 1000, "epochs": 1})
    path = tmp_path / "tiny.toml"
    path.write_text(dump_toml(tiny, provenance))
    before = len(lockbox.openings(quick_study.load()))
    out = tmp_path / "retrain"

    result = cli(
        "retrain", path, "--seeds", 2, "--storage", quick_study.url, "--out", out,
        "--data-dir", data_dir, "--device", "cpu", "--subset", 700,
    )  # fmt: skip
    assert result.code == 0, result.err

    card = json.loads((out / "model_card.json").read_text())
    trial = quick_study.load().trials[provenance["trial"]]
    assert card["params"] == trial.user_attrs["params"]
    assert card["macs"] == trial.user_attrs["macs"]
    # The explicit --subset, not the file's search-sized one (without it: all 60k).
    assert card["epochs"] == 1 and card["train_images"] == 700
    accs = card["test_acc"]
    assert list(accs["per_seed"]) == [str(tiny.seed), str(tiny.seed + 1)]
    assert all(0 <= a <= 1 for a in accs["per_seed"].values())
    assert accs["mean"] == pytest.approx(statistics.fmean(accs["per_seed"].values()))
    assert accs["std"] == pytest.approx(statistics.stdev(accs["per_seed"].values()))
    assert card["search_val_acc"] == provenance["val_acc"]
    # Like with like: the validation score of the retrain's 1 epoch, else the one it has.
    gap = card["val_to_test"]
    assert gap == val_to_test(provenance, test_acc=accs["mean"], epochs=1, train_images=700)
    assert card["val_to_test_gap"] == pytest.approx(gap["val_acc"] - accs["mean"])
    assert f"training images {provenance['val_train_images']:,} vs 700" in gap["differs"]
    assert card["throughput"]["cpu_batch1_img_s"] > 0
    assert card["throughput"]["cpu_batch32_img_s"] > 0
    assert len(card["checkpoints"]) == 2
    assert all(Path(c).is_file() for c in card["checkpoints"])
    assert card["provenance"] == provenance
    assert from_dict(RunConfig, card["config"]) == tiny
    assert card["lockbox"]["openings_this_retrain"] == 2
    assert card["lockbox"]["openings_on_study"] == before + 2
    recorded = lockbox.openings(quick_study.load())
    assert len(recorded) == before + 2
    assert [r["reason"] for r in recorded[-2:]] == [
        f"retrain seed {s}" for s in (tiny.seed, tiny.seed + 1)
    ]
    assert {r["config"] for r in recorded[-2:]} == {
        lockbox.fingerprint(full_train_config(replace(tiny, seed=s), subset=700))
        for s in (tiny.seed, tiny.seed + 1)
    }
    card_names = {f"trial-{provenance['trial']:04d}-model_card.{ext}" for ext in ("md", "json")}
    assert card_names <= {m.filename for m in get_all_artifact_meta(quick_study.load())}

    markdown = (out / "model_card.md").read_text()
    assert markdown == Path(card["paths"]["markdown"]).read_text()
    for text in (
        f"| parameters | {card['params']:,} |",
        f"| multiply-accumulates per image | {card['macs']:,} |",
        f"| test accuracy, mean +- std | {accs['mean']:.4f} +- {accs['std']:.4f} |",
        f"| validation-to-test gap | {describe(gap)} |",
        "| CPU inference, batch 1 |",
        "| CPU inference, batch 32 |",
        f"| test lockbox openings | 2 by this retrain; {before + 2} in all on study 'quick' |",
        card["checkpoints"][0],
    ):
        assert text in markdown
    assert f"test accuracy {accs['mean']:.4f} +- {accs['std']:.4f} over 2 seeds" in result.out
