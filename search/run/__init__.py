"""Running a search: its options (``options``), the plan made of them and stored on the study
(``plan``), how a worker joins it (``join``), one process's run (``runner``), K local worker
processes (``launcher``) or N on a Ray cluster (``ray_launcher``), a worker's loop
(``worker``), one trial (``objective``), the timed estimate printed before the first trial
(``estimate``) and the failpoints the reliability tests inject (``faults``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import optuna

from search.run.options import RunOptions

if TYPE_CHECKING:
    from search.study import ResolvedStudy


def start(opts: RunOptions, study: ResolvedStudy | None = None) -> optuna.Study:
    """Run the search ``opts`` asks for, here or in worker processes; the stored study."""
    # Deferred: these import torch, which a worker's claim path (``search.run.worker``) must not.
    from search.run.launcher import devices, launch
    from search.run.plan import make_plan, storage_url
    from search.run.ray_launcher import connect
    from search.run.ray_launcher import launch as launch_on_ray
    from search.run.stored import open_study
    from search.study import resolve

    for note in opts.ignored():
        print(f"note: {note}", file=sys.stderr)
    study = study or resolve(opts.study)
    plan, url = make_plan(opts, study), storage_url(opts, study)
    # Checked before the study is touched: a wrong address or --gpus leaves nothing behind.
    if plan.placement.ray:
        connect(plan.placement.ray, plan.study_name)
    elif plan.placement.launches_workers:
        devs = devices(plan.placement)
    stored, changes = open_study(plan, url)
    if changes:
        print(
            f"note: study {stored.study_name!r} resumes with a new plan: {'; '.join(changes)}",
            file=sys.stderr,
        )
    if plan.placement.ray:
        return launch_on_ray(plan, url, stored)
    if plan.placement.launches_workers:
        return launch(plan, url, stored, devs)
    # Deferred: Lightning, loaded only where trials train, not in a launcher of workers.
    from search.run.runner import run

    return run(plan, url, stored, trial_callbacks=opts.trial_callbacks)


__all__ = ["RunOptions", "start"]
