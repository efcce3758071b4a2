from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.testing import QuickStudy

pytestmark = pytest.mark.slow


def test_each_trial_logs_to_its_own_folder_under_the_study(quick_study: QuickStudy) -> None:
    """`tensorboard --logdir runs/tb/<study>` compares the trials side by side: one run
    folder per trial, named by its number, holding the epochs it reported."""
    root = quick_study.runs / "tb" / "quick"
    trained = [t for t in quick_study.load().trials if t.intermediate_values]
    assert sorted(p.name for p in root.iterdir()) == [f"trial-{t.number:04d}" for t in trained]
    for trial in trained:
        folder = root / f"trial-{trial.number:04d}"
        assert trial.user_attrs["log_dir"] == str(folder)
        assert list(folder.glob("events.out.tfevents.*"))
        events = EventAccumulator(str(folder))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        # a trial pruned in its first epoch stops at validation, before its training loss
        assert {"val_loss", "val_acc"} <= tags
        assert "train_loss" in tags or len(trial.intermediate_values) == 1
        logged = [e.value for e in events.Scalars("val_acc")]
        reported = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
        assert logged == pytest.approx(reported)
