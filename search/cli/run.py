"""``run``: create or resume a study and run its trials, in this process or in K workers."""

from __future__ import annotations

import argparse

from search.options import add_flags, from_args
from search.results.console import top_table
from search.results.next_steps import next_text
from search.run import RunOptions, start
from search.run.runner import storage_url
from search.study import resolve


def cmd_run(args: argparse.Namespace) -> int:
    opts = from_args(RunOptions, args)
    study = resolve(opts.study)
    stored = start(opts, study)
    if opts.worker_index is None:
        print(top_table(stored))
        flags = {"artifacts": opts.artifacts, "data_dir": opts.data_dir, "device": opts.device}
        if text := next_text(stored, storage_url(study, opts), **flags):
            print(f"\n{text}")
    return 0


def add(sub) -> None:
    p = sub.add_parser("run", help="create or resume a study and run its trials")
    add_flags(p, RunOptions)
    p.set_defaults(func=cmd_run)
