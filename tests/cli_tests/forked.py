"""``fmnist-search ARGV`` for many argvs, each in a process of its own, forked from one that
imported the CLI once: the import is most of a short command's cost (seconds on 2 cores),
and a table of bad inputs would pay it once per row.

    python -m tests.cli_tests.forked FOLDER < argvs.json

Each child runs what ``python -m search.cli`` runs, with the interpreter's own handling of
what escapes it (a traceback and status 1, ``SystemExit``'s code), its stdout and stderr in
``FOLDER/N.out`` and ``FOLDER/N.err``; the parent writes each status to ``FOLDER/N.code``.
Whatever the import itself prints (a warning) is on the parent's stderr."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from search.cli import build_parser, main

PARALLEL = 4


def _child(argv: list[str], out: Path, err: Path) -> int:
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
    os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    try:
        code = main(argv)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def run_all(argvs: list[list[str]], folder: Path) -> None:
    running: dict[int, int] = {}
    for i, argv in enumerate(argvs):
        if len(running) >= PARALLEL:
            _reap(running, folder)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(_child(argv, folder / f"{i}.out", folder / f"{i}.err"))
        running[pid] = i
    while running:
        _reap(running, folder)


def _reap(running: dict[int, int], folder: Path) -> None:
    pid, status = os.wait()
    (folder / f"{running.pop(pid)}.code").write_text(str(os.waitstatus_to_exitcode(status)))


if __name__ == "__main__":
    build_parser()  # every command's imports, paid here once
    run_all(json.load(sys.stdin), Path(sys.argv[1]))
