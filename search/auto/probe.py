"""What a budget is planned from before anything is searched: the preset's known recipe (its
first baseline) as one config, and a search epoch's seconds from a few timed steps of it (the
same timing as a study's start estimate, ``search.timing``)."""

from __future__ import annotations

from fmnist.config import RunConfig
from search.study import ResolvedStudy
from search.timing import time_steps

TRAIN_IMAGES = 60_000  # what a final training trains on: every training image


def recipe_config(study: ResolvedStudy) -> RunConfig:
    """The preset's best known recipe (its first baseline; the space's defaults without one)
    at the study's epochs, as the search trains it."""
    values = study.defaults | (study.baselines[0] if study.baselines else {})
    return study.space.build(values.__getitem__, study.base)


def search_images(study: ResolvedStudy) -> int:
    """Training images of one search trial."""
    return study.preset.subset or TRAIN_IMAGES - study.preset.val_size


def search_epoch_seconds(study: ResolvedStudy, *, data_dir, device: str) -> float:
    """Seconds of one search epoch of the preset's recipe here: what ``auto`` plans from, and
    what the baselines bench records before each run as the machine's speed."""
    return time_steps(recipe_config(study), data_dir=data_dir, device=device).epoch_s
