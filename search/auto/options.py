"""``fmnist-search auto``'s options, typed and frozen; each field owns its flag (as
``search.run.RunOptions`` does), so the defaults live here once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from search import flags
from search.auto.budget import text
from search.auto.plan import Split
from search.errors import SearchError
from search.flags import duration
from search.options import flag
from search.run.options import DATA_DIR_HELP, DEVICE_HELP, STORAGE_HELP
from search.study import ResolvedStudy
from search.study.preset import names


def budget_field(what: str, *, required: bool = True) -> Any:
    """A ``--budget DURATION`` field, read into seconds; ``what`` the budget covers. Left
    out where not ``required``, it is 0: the preset's own budget."""
    return field(
        default=0.0,
        metadata=flag(
            f"{what}: 15m, 1h, 900s or 900",
            name="budget",
            metavar="DURATION",
            parse=duration,
            required=required,
        ),
    )


@dataclass(frozen=True)
class AutoOptions:
    budget_s: float = budget_field(
        "the whole command's wall time, start-up included (default: the preset's budget)",
        required=False,
    )
    study: str = field(
        default="cpu",
        metadata=flag(lambda: f"a preset ({', '.join(names())}) or .toml path (default cpu)"),
    )
    seeds: int = field(
        default=0,
        metadata=flag(
            "extra seeds of the final training, after the budget and outside it, for the "
            "card's mean +- std (default 0)"
        ),
    )
    seed: int | None = field(
        default=None,
        metadata=flag("the search's sampler seed (default: the preset's)", parse=flags.seed),
    )
    storage: str | None = field(default=None, metadata=flag(STORAGE_HELP))
    study_name: str | None = field(
        default=None,
        metadata=flag("name in the storage (default <preset>-auto-<budget>); rerun to resume"),
    )
    out_dir: str | None = field(
        default=None,
        metadata=flag("output folder (default runs/auto/<study name>)", name="out"),
    )
    final_images: int | None = field(
        default=None,
        metadata=flag(
            "train the final model on N images instead of all 60k (quick checks only)",
            metavar="N",
        ),
    )
    data_dir: str | None = field(default=None, metadata=flag(DATA_DIR_HELP))
    device: str = field(default="auto", metadata=flag(DEVICE_HELP))
    # Not a flag: a split held fixed instead of the measured one (the baselines bench's
    # one-epoch top-K is this pipeline with one-epoch trials and its own split).
    split: Split | None = None

    def __post_init__(self) -> None:
        if not self.budget_s >= 0:  # 0: the preset's
            raise SearchError("--budget: give a positive duration such as 15m, 1h or 900s")
        if self.seeds < 0:
            raise SearchError(f"--seeds {self.seeds}: give 0 or more extra seeds")
        if self.final_images is not None and self.final_images < 100:
            raise SearchError(f"--final-images {self.final_images}: give at least 100 images")

    def name_of(self, preset: str) -> str:
        return self.study_name or f"{preset}-auto-{text(self.budget_s)}"

    def with_budget_of(self, study: ResolvedStudy) -> AutoOptions:
        """These options with the preset's budget where no --budget was given."""
        if self.budget_s:
            return self
        if study.budget_s is None:
            raise SearchError(
                f"preset {study.name!r} names no budget; give one with --budget 15m (or add "
                'budget = "15m" to the preset)'
            )
        return dataclasses.replace(self, budget_s=study.budget_s)
