"""One bench run as every part sees it: its options, the device, a scratch folder; how a part
prints a table; and a fresh study in the scratch folder for the parts that search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist_bench.options import BenchOptions
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
