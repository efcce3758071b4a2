"""Running a search: its options (``options``), one process's run (``runner``), K local
worker processes (``launcher``) or N on a Ray cluster (``ray_launcher``), a worker's loop
(``worker``), one trial (``objective``), the timed estimate printed before the first trial
(``estimate``) and the failpoints the reliability tests inject (``faults``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import optuna

from search.folders import out_folder
from search.run.options import RunOptions

if TYPE_CHECKING:
    from search.study import ResolvedStudy


def start(opts: RunOptions, study: ResolvedStudy | None = None) -> optuna.Study:
    """Run the search ``opts`` asks for, here or in worker processes; the stored study."""
    # Deferred: these import torch, which a worker's claim path (``search.run.worker``) must not.
    from search.run.launcher import launch
    from search.run.ray_launcher import launch as launch_on_ray
    from search.run.runner import run
    from search.study import resolve

    out_folder(opts.out_dir)
    if opts.worker_index is None:
        for note in opts.ignored():
            print(f"note: {note}", file=sys.stderr)
    study = study or resolve(opts.study)
    if opts.ray and opts.worker_index is None:
        return launch_on_ray(study, opts)
    return launch(study, opts) if opts.launches_workers else run(study, opts)


__all__ = ["RunOptions", "start"]
