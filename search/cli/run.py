"""``run``: create or resume a study and run its trials, in this process or in K workers;
``worker``: one of those workers, joining the study by its storage URL and name."""

from __future__ import annotations

import argparse

from search import flags
from search.options import add_flags, from_args
from search.results.console import top_table
from search.results.next_steps import next_text
from search.run import RunOptions, start
from search.run.options import DEVICE_HELP, STORAGE_HELP
from search.run.plan import storage_url
from search.study import resolve


def cmd_run(args: argparse.Namespace) -> int:
    opts = from_args(RunOptions, args)
    study = resolve(opts.study)
    stored = start(opts, study)
    print(top_table(stored))
    flags = {"artifacts": opts.artifacts, "data_dir": opts.data_dir, "device": opts.device}
    if text := next_text(stored, storage_url(opts, study), **flags):
        print(f"\n{text}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    # Deferred: the runner imports torch, which `run`'s parser must not wait for.
    from search.run.join import join
    from search.run.runner import run

    plan, stored = join(args.storage, args.study_name, args.worker_index)
    run(plan, args.storage, stored, index=args.worker_index, device=args.device)
    return 0


def add(sub) -> None:
    p = sub.add_parser("run", help="create or resume a study and run its trials")
    add_flags(p, RunOptions)
    p.set_defaults(func=cmd_run)
    w = sub.add_parser(
        "worker",
        help="join a study that `run` started, as one of its workers (its launchers start these)",
    )
    w.add_argument("--storage", required=True, help=STORAGE_HELP)
    w.add_argument("--study-name", required=True, help="the study to join")
    w.add_argument("--worker-index", type=flags.whole(0), default=0, help="this worker's index")
    w.add_argument("--device", help=f"{DEVICE_HELP}; default: the run's")
    w.set_defaults(func=cmd_worker)
