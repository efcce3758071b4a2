"""A run re-planned as it trains: its schedule goes on as a fresh one of the new length would
from the step reached, and a ``Deadline`` ends it by its time whatever it first planned.
The clock is the test's own, so each epoch takes exactly the seconds the test says."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from fmnist.classifier import Classifier
from fmnist.config import RunConfig, load_toml, replace, stretch
from fmnist.deadline import Deadline
from fmnist.record import train_run

STEPS = 10  # steps an epoch, in the schedule-only tests


def stepped(module: Classifier, steps: int):
    """``module``'s optimiser and schedule after ``steps`` steps (no gradients: the schedule
    alone moves)."""
    setup = module.configure_optimizers()
    opt, sched = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    for _ in range(steps):
        opt.step()
        sched.step()
    return opt, sched


def lr_and_momentum(opt: torch.optim.Optimizer) -> tuple[float, float]:
    group = opt.param_groups[0]
    return group["lr"], group["betas"][0] if "betas" in group else group.get("momentum", 0.0)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "step"])
@pytest.mark.parametrize("epochs", [7, 2])  # longer, and shorter than the first plan
def test_a_replanned_schedule_goes_on_as_a_fresh_one_would(
    tiny_config: RunConfig, schedule: str, epochs: int
) -> None:
    first = replace(tiny_config, epochs=4, **{"optim.schedule": schedule,
                                               "optim.warmup_epochs": 0.5})  # fmt: skip
    module = Classifier(first, steps_per_epoch=STEPS)
    opt, _ = stepped(module, 15)
    sched = module.replan(epochs, opt, 15)
    fresh = Classifier(stretch(first, epochs), steps_per_epoch=STEPS)
    assert module.config == fresh.config  # the config as it now trains
    fresh_opt, fresh_sched = stepped(fresh, 15)
    for _ in range(epochs * STEPS - 15):  # to the schedule's last step
        assert lr_and_momentum(opt) == pytest.approx(lr_and_momentum(fresh_opt))
        for o, s in ((opt, sched), (fresh_opt, fresh_sched)):
            o.step()
            s.step()
    assert lr_and_momentum(opt) == pytest.approx(lr_and_momentum(fresh_opt))


def ticking(seconds: Iterable[float]):
    """A clock that reads 0 first, then moves on by each of ``seconds`` in turn."""
    times = itertools.accumulate(itertools.chain([0.0], seconds))
    return lambda: next(times)


class LastLR(pl.Callback):
    def on_train_end(self, trainer, pl_module) -> None:
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]


@pytest.mark.slow  # trains a few tiny epochs
@pytest.mark.parametrize(
    ("planned", "seconds", "trained"),
    [
        (3, itertools.repeat(1.0), 7),  # planned too few: grows to fill the time
        (12, itertools.repeat(1.0), 7),  # planned too many: ends by the deadline
        # epochs that slow down: the plan shrinks with them (at 6 s, 4 done at 1.5 s an
        # epoch leave room for 2 more; at 9 s, none)
        (10, itertools.chain([1.0] * 3, itertools.repeat(3.0)), 5),
    ],
)
def test_a_run_ends_by_its_deadline(
    tiny_config: RunConfig, data_dir: Path, tmp_path: Path, planned, seconds, trained
) -> None:
    changes = {"data.subset": 300, "data.val_size": 100, "optim.batch_size": 20}  # 10 steps
    config = replace(tiny_config, epochs=planned, **changes)
    deadline, last = Deadline(until=7.5 if trained == 7 else 10.0, clock=ticking(seconds)), LastLR()
    metrics, result = train_run(config, tmp_path / "run", data_dir=data_dir, device="cpu",
                                callbacks=[deadline, last])  # fmt: skip
    assert len(result.history) == trained == result.config.epochs
    assert deadline.stamps[-1] <= deadline.until
    # the run's files give the epochs it trained, not those it planned
    assert metrics["config"]["epochs"] == trained
    assert load_toml(tmp_path / "run" / "config.toml")[0].epochs == trained
    # its one-cycle schedule ended where a run planned at that length ends: at its floor
    steps = result.module.steps_per_epoch
    planned_so, _ = stepped(Classifier(stretch(config, trained), steps), trained * steps)
    assert last.lr == pytest.approx(lr_and_momentum(planned_so)[0], rel=1e-9)
    assert last.lr < config.optim.lr / 100  # annealed, not cut off part way
    assert deadline.plans[-1][1] == trained
