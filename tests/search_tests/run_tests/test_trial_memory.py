"""Nothing of a trial outlives it: a long-lived worker's memory stays flat while Hyperband
prunes most of its trials (issue 21, item 4)."""

from __future__ import annotations

import gc
from pathlib import Path
from statistics import median

import optuna
import pytest
from optuna.trial import TrialState

from search.run.objective import Objective
from search.run.worker import work
from search.study import resolve
from tests.testing import write_preset

TRIALS = 40

# A 0.39M-parameter ResNet, small enough an image count that 40 trials stay short.
NET_0_4M = {
    "resnet.intro_width": [64],
    "resnet.intro_pool": [True],
    "resnet.width": [48],
    "resnet.stages": [2],
    "resnet.blocks": [2],
    "optim.batch_size": [64],
}


def vm_rss_mb() -> float:
    """This process's resident memory now (``ru_maxrss`` is a peak: it cannot fall)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow
def test_forty_pruned_trials_leave_the_workers_rss_flat(tmp_path: Path) -> None:
    preset = write_preset(
        tmp_path / "flat.toml", epochs=2, subset=128, val_size=100, ranges=NET_0_4M
    )
    study = resolve(str(preset))
    url = f"sqlite:///{tmp_path}/study.db"
    # Every trial is pruned at its first report, by Optuna's pruning callback, as Hyperband
    # prunes most trials of a real study.
    stored = optuna.create_study(
        storage=url, study_name="flat", pruner=optuna.pruners.ThresholdPruner(lower=1.1)
    )
    objective = Objective(
        study,
        data_dir=None,
        device="cpu",
        out_dir=tmp_path,
        study_name="flat",
        split_fingerprint="not checked here",
    )
    rss: list[float] = []
    try:
        ran = work(
            stored, objective, target=TRIALS, url=url, on_trial=lambda _: rss.append(vm_rss_mb())
        )
    finally:
        gc.unfreeze()  # the objective froze this test process's objects; later tests collect
    assert [t.state for t in ran] == [TrialState.PRUNED] * TRIALS
    assert ran[0].params["optim.lr"] and 0.3e6 < ran[0].user_attrs["params"] < 0.5e6
    # Medians of ten readings early and late, 26 trials apart: a leak grows every trial (a
    # pruned trial's model, optimizer state and Trainer, several MB each even for this net;
    # 13 MB a trial for the 0.87M VGG before the fix), while one reading can jump 90 MB and
    # fall back (the allocator's arenas) when other processes load the machine.
    early, late = median(rss[4:14]), median(rss[-10:])
    print(f"RSS median over trials 5-14: {early:.0f} MB, over the last 10: {late:.0f} MB")
    assert late - early < 50, [round(r) for r in rss]
