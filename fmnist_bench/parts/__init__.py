"""The bench's parts: ``PARTS`` maps a part's name to the function that measures it. Each takes
one ``Bench`` (the parsed flags, the device, a scratch folder, the parts asked for), prints its
tables as it goes and returns its figures under their JSON keys. Parts that share their runs
(``overhead`` and ``search``) share one function, which runs once."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.text import table

GIB = 2**30


@dataclass(frozen=True)
class Bench:
    args: argparse.Namespace
    device: str
    work: Path
    parts: frozenset[str]

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")


def show(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a part's table as soon as it is measured."""
    print("\n" + table(title, header, rows), flush=True)


def _registry() -> dict[str, Callable[[Bench], dict[str, Any]]]:
    from fmnist_bench.parts import gpu, memory, peer, precision, studies, threads, throughput

    return {
        "throughput": throughput.run,
        "overhead": studies.run,
        "search": studies.run,
        "memory": memory.run,
        "gpu": gpu.run,
        "fastpath": precision.fastpath,
        "accuracy": precision.accuracy,
        "peer": peer.run,
        "threads": threads.run,
    }


PARTS = _registry()
DEFAULT_PARTS = ("throughput", "overhead", "search", "memory", "gpu")
