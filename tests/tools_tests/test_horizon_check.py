"""tools/horizon_check.py: configs trained at one length on the validation split, each
run's curve in one JSON that the docs' table is rendered from; the test set never opened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import docs_figures, horizon_check

TINY = """epochs = 3
seed = 1

[model]
family = "vgg"
widths = [8, 16]
convs_per_block = 1
pools = 2
dropout = {dropout}
fc_width = 16
fc_dropout = 0.1

[data]
val_size = 200
subset = 600

[optim]
batch_size = 100
schedule = "onecycle"
"""


def test_each_config_trains_the_given_epochs_on_validation(tmp_path: Path, data_dir: Path) -> None:
    configs = []
    for name, dropout in (("low", 0.0), ("high", 0.4)):
        configs.append(tmp_path / f"{name}.toml")
        configs[-1].write_text(TINY.format(dropout=dropout))
    out = tmp_path / "h.json"
    argv = [*map(str, configs), "--epochs", "2", "--json", str(out), "--out",
            str(tmp_path / "runs"), "--data-dir", str(data_dir), "--device", "cpu"]  # fmt: skip
    assert horizon_check.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["epochs"] == 2 and list(data["runs"]) == ["low", "high"]
    for name, run in data["runs"].items():
        assert len(run["val_curve"]) == 2 and run["val_acc"] == run["val_curve"][-1]
        assert run["config"]["epochs"] == 2  # the given length, not the file's 3
        metrics = json.loads((tmp_path / "runs" / name / "metrics.json").read_text())
        assert metrics["test_acc"] is None and metrics["lockbox_openings"] == 0
    assert data["runs"]["high"]["config"]["model"]["dropout"] == 0.4
    assert data["argv"][1:3] == ["tools/horizon_check.py", str(configs[0])]
    table = docs_figures._horizon(data)
    assert (
        "| high | 0.40 | 0.10 |" in table
        and "2 epochs on the training images outside the 200-image" in table
    )


def test_a_config_without_a_validation_split_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(TINY.format(dropout=0.0).replace("val_size = 200", "val_size = 0"))
    with pytest.raises(SystemExit):
        horizon_check.main([str(path), "--epochs", "1", "--json", str(tmp_path / "h.json")])
    assert not (tmp_path / "h.json").exists()
