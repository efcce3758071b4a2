"""``run``: create or resume a study and run its trials, in this process or in K workers."""

from __future__ import annotations

import argparse

from search.options import add_flags, from_args
from search.results.console import top_table
from search.run import RunOptions, start


def cmd_run(args: argparse.Namespace) -> int:
    opts = from_args(RunOptions, args)
    stored = start(opts)
    if opts.worker_index is None:
        print(top_table(stored))
    return 0


def add(sub) -> None:
    p = sub.add_parser("run", help="create or resume a study and run its trials")
    add_flags(p, RunOptions)
    p.set_defaults(func=cmd_run)
