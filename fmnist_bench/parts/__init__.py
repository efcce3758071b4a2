"""The bench's parts: ``PARTS`` maps a part's name to the function that measures it. Each takes
one ``fmnist_bench.bench.Bench``, prints its tables as it goes and returns its figures under
their JSON keys. Parts that share their runs (``overhead`` and ``search``) share one function,
which runs once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fmnist_bench.bench import Bench
from fmnist_bench.parts import gpu, memory, peer, precision, studies, threads, throughput
from search.errors import SearchError

PARTS: dict[str, Callable[[Bench], dict[str, Any]]] = {
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


def check(names: Sequence[str]) -> None:
    """One line naming the parts asked for that do not exist, and those that do."""
    if unknown := set(names) - PARTS.keys():
        raise SearchError(
            f"unknown bench part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}"
        )
