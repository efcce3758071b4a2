"""``auto`` on a budget of seconds, interrupted at its final phase and resumed by the same
command: the plan goes on where it stopped, the whole stays within the budget (+5%) and the
test set is opened once; ``--seed`` seeds its search's sampler."""

import json
import re
import time

import pytest

from fmnist.config import load_toml
from search.auto.options import AutoOptions
from search.auto.pipeline import auto
from search.auto.plan import stored_plan
from search.run import plan as run_plan
from search.study import lockbox
from tests.testing import AUTO_IN_TESTS, FINAL_IMAGES_IN_TESTS, load, write_preset

BUDGET_S = 30.0
NAME = f"tinyauto-auto-{BUDGET_S:g}s"  # the study auto names after the preset and budget


class CtrlC:
    """The progress lines as a user reads them; Ctrl-C when the final training is announced."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if line.startswith("auto: final training"):
            raise KeyboardInterrupt


@pytest.mark.slow
def test_auto_resumes_its_plan_within_budget_and_opens_the_test_set_once(cli, tmp_path) -> None:
    preset = write_preset(tmp_path / "tinyauto.toml", **AUTO_IN_TESTS)
    url, out = f"sqlite:///{tmp_path}/s.db", tmp_path / "auto"
    flags = ["--budget", f"{BUDGET_S:g}s", "--study", preset, "--storage", url, "--out", out,
             "--final-images", FINAL_IMAGES_IN_TESTS, "--seed", 7]  # fmt: skip
    opts = AutoOptions(
        budget_s=BUDGET_S, study=str(preset), storage=url, out_dir=str(out),
        final_images=FINAL_IMAGES_IN_TESTS, seed=7,
    )  # fmt: skip
    ctrl_c = CtrlC()
    begin = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        auto(opts, log=ctrl_c)
    first_wall = time.monotonic() - begin
    study = load(url, NAME)
    stopped = stored_plan(study)
    assert stopped.phase == "final" and stopped.split is not None
    assert {"start", "search", "confirm"} <= stopped.spent_s.keys()
    progress = [line for line in ctrl_c.lines if f"of the {BUDGET_S:g}s budget" in line]
    assert progress and all("s of the budget left" in line for line in progress)
    # each phase's share is its own seconds over the budget (the final's is not "100%")
    for line in progress:
        share, seconds = re.search(r"(\d+)% of the .*?, (\d+) s for it", line).groups()
        assert abs(int(share) - 100 * int(seconds) / BUDGET_S) <= 3, line  # rounding
    trials = len(study.trials)
    assert lockbox.openings(study) == []
    assert run_plan.stored_plan(study).seed == 7  # the preset's is 0

    begin = time.monotonic()
    result = cli("auto", *flags)
    wall = first_wall + time.monotonic() - begin
    assert result.code == 0, result.log
    study = load(url, NAME)
    plan = stored_plan(study)
    assert plan.phase == "done" and plan.final_epochs >= 1
    assert len(study.trials) == trials  # the resume did not search again
    assert plan.spent_s["final"] > stopped.spent_s.get("final", 0.0)
    assert len(lockbox.openings(study)) == 1
    card = json.loads((out / "auto_card.json").read_text())
    assert card["card"]["lockbox"]["openings_this_retrain"] == 1
    # planned from the winner's epoch time, then re-planned to end by the budget's end: the
    # card, and the config its extra seeds would train, give the epochs trained
    trained = card["card"]["epochs"]
    assert (
        trained >= 1
        and f"| final training | {trained} epochs," in (out / "auto_card.md").read_text()
    )
    assert load_toml(out / "final.toml")[0].epochs == trained
    seed_dir = next((out / "final").glob("seed-*"))
    assert load_toml(seed_dir / "config.toml")[0].epochs == trained
    # Within the budget as planned: the final training was given what the budget had left
    # (scoring reserved) and bought the epochs that fit in it at its measured epoch time, or
    # the one epoch a model needs. (Wall-clock figures are for the benchmarks, not tests.)
    assert plan.final_room_s <= BUDGET_S - plan.spent_s["start"] - plan.spent_s["search"]
    fits = plan.final_epochs * plan.final_epoch_s <= plan.final_room_s
    assert fits or plan.final_epochs == 1, (wall, plan)
    assert plan.total_spent == pytest.approx(wall, rel=0.1)  # every second is accounted

    again = cli("auto", *flags)  # a finished plan is read back, never run again
    assert again.code == 0 and "already finished its plan" in again.out
    assert len(lockbox.openings(load(url, NAME))) == 1
