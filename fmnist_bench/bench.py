"""One bench run as every part sees it: its options, the device, a scratch folder; how a part
prints a table; a fresh study in the scratch folder for the parts that search; and the JSON
of a long bench cut short, which its same command continues."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist_bench.options import BenchOptions
from search.errors import SearchError
from search.run import RunOptions
from search.text import table

GIB = 2**30


@dataclass(frozen=True)
class Bench:
    opts: BenchOptions
    device: str
    work: Path

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def parts(self) -> frozenset[str]:
        return frozenset(self.opts.parts)

    def fresh_study(self, label: str, study: str | Path, **options: Any) -> RunOptions:
        """``fmnist-search run`` of ``study`` on a new SQLite file and output folder in the
        scratch folder, both named ``label``, on the bench's device and data."""
        return RunOptions(
            study=str(study),
            storage=f"sqlite:///{self.work}/{label}.db",
            out_dir=str(self.work / label),
            device=self.device,
            data_dir=self.opts.data_dir,
            **options,
        )


def show(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a part's table as soon as it is measured."""
    print("\n" + table(title, header, rows), flush=True)


def cut_short(
    path: Path, opts: Any, what: str, free: frozenset[str] = frozenset({"json"})
) -> dict[str, Any] | None:
    """The JSON a bench of the same options left at ``path`` when it was cut short (it says
    ``partial``), for the same command to continue it as `fmnist-search run` continues a
    study; None where there is none, or the bench there finished (measured again from the
    start). Other options there, save those in ``free``, are a one-line error naming each."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("partial"):
        return None
    ours = json.loads(json.dumps(dataclasses.asdict(opts)))
    theirs = data.get("options", {})
    if differ := sorted(k for k in ours.keys() - free if ours[k] != theirs.get(k)):
        shown = "; ".join(f"{k}: {theirs.get(k)!r} there, {ours[k]!r} here" for k in differ)
        raise SearchError(
            f"{path} holds {what} cut short with other options ({shown}); rerun its own "
            "command to continue it, or give another --json"
        )
    return data
