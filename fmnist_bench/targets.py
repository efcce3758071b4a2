"""The issues' targets that a bench run measured, each with its figure and verdict."""

from __future__ import annotations

from typing import Any

from fmnist_bench.bench import GIB


def _target(target: str, value: float, holds: bool) -> dict[str, Any]:
    return {"target": target, "value": value, "holds": holds}


def targets(results: dict[str, Any], on_gpu: bool) -> list[dict[str, Any]]:
    rows = []
    want = 20.0 if on_gpu else 2.0
    for name, p in results.get("throughput", {}).items():
        ratio = p["ratio_defaults"]
        rows.append(
            _target(
                f"{name}: ours at defaults >= {want:g}x the 2020 pipeline's images/s",
                ratio,
                ratio >= want,
            )
        )
    o = results.get("overhead", {}).get("pruned", {})
    if o.get("trials"):
        rows.append(
            _target(
                "median trial overhead <= max(1 s, 2% of the trial)",
                o["median_seconds"],
                o["median_seconds"] <= o["limit_seconds"],
            )
        )
    if "memory" in results and not on_gpu:
        gib = results["memory"]["peak_rss_bytes"] / GIB
        rows.append(_target("worker peak RSS <= 3 GiB on CPU", gib, gib <= 3.0))
    g = results.get("gpu", {})
    if "resnet" in g.get("fast_path", {}):
        best = min(r["seconds_per_60k"] for r in g["fast_path"]["resnet"])
        rows.append(_target("resnet <= 1 s per 60k-image epoch", best, best <= 1.0))
    packs = {p["workers"]: p["images_per_s"] for p in g.get("packed", [])}
    if 1 in packs and 4 in packs:
        gain = packs[4] / packs[1]
        rows.append(_target("4 packed workers >= 2.5x the images/s of one", gain, gain >= 2.5))
    if "peer" in results:
        peer = results["peer"]
        gap = peer["test_acc_difference"]
        rows.append(
            _target(
                "ours >= 3 points above Optuna's recipe in test accuracy, same time",
                100 * gap,
                gap >= 0.03,
            )
        )
        # Both stop starting trials at the timeout; the recipe finishes its last trial, ours
        # stops it at an epoch's end. A search that ran much longer bought its lead with time.
        ratio = peer["ours"]["wall_seconds"] / peer["theirs"]["wall_seconds"]
        rows.append(_target("ours' search wall <= 1.15x the recipe's", ratio, ratio <= 1.15))
    return rows
