"""``run``: create or resume a study and run its trials, in this process or in K workers."""

from __future__ import annotations

import argparse

from search.results.console import top_table
from search.run import options, start


def cmd_run(args: argparse.Namespace) -> int:
    opts = options.from_args(args)
    stored = start(opts)
    if opts.worker_index is None:
        print(top_table(stored))
    return 0


def add(sub) -> None:
    p = sub.add_parser("run", help="create or resume a study and run its trials")
    options.add_flags(p)
    p.set_defaults(func=cmd_run)
