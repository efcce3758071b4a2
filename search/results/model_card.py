"""Retrain an exported config on all 60k training images, once per seed; open the test
lockbox once per seed; write a model card. Each opening is recorded, before its score is
computed, on the study the config came from, or in a ledger file in the output folder for a
config that names no study (``search.study.lockbox``)."""

from __future__ import annotations

import json
import statistics
from functools import partial
from pathlib import Path
from typing import Any

import torch

from fmnist.config import full_train_config, load_toml, replace, to_dict
from fmnist.deadline import Deadline
from fmnist.models.measure import cpu_latency_ms
from fmnist.record import train_run
from fmnist.train import resolve_device, throughput
from search.errors import SearchError
from search.results import gap
from search.results.artifacts import attach_to_trial
from search.storage import safe_url
from search.storage.artifact_folder import artifacts_dir
from search.storage.reference import study_of
from search.study import lockbox


def retrain(
    config_path: Path,
    *,
    seeds: int,
    out_dir: str | None = None,
    data_dir=None,
    device: str = "auto",
    storage_url: str | None = None,
    artifacts: str | None = None,
    subset: int | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """``subset``: train on that many images instead of all 60k (the config's own subset,
    sized for a search, is dropped). ``until``: a ``time.monotonic()`` time by which each
    seed ends, its epochs re-planned as it trains (``fmnist.deadline``; ``auto``'s final
    training, one seed); the card gives the epochs trained."""
    if seeds < 1:
        raise SearchError(f"--seeds {seeds}: retrain at least one seed")
    config, provenance = load_toml(config_path)
    study = study_of(provenance, storage_url)  # reachable before anything trains
    tag = (
        f"{provenance['study']}-trial{provenance['trial']}"
        if "study" in provenance
        else config_path.stem
    )
    out = Path(out_dir or f"runs/retrain/{tag}")
    ledger = lockbox.ledger(study, out)
    device = resolve_device(device)
    runs = []
    for i in range(seeds):
        seeded = full_train_config(replace(config, seed=config.seed + i), subset=subset)
        metrics, result = train_run(
            seeded,
            out / f"seed-{seeded.seed}",
            data_dir=data_dir,
            device=device,
            full_train=True,
            evaluate_test=True,
            provenance=provenance,
            callbacks=[Deadline(until)] if until is not None else [],
            before_test=partial(ledger.record, reason=f"retrain seed {seeded.seed}"),
        )
        runs.append(metrics)
    # as trained: a deadline (``until``) re-plans the epochs and the schedule over them
    config = replace(config, epochs=result.config.epochs, optim=result.config.optim)
    total = ledger.count()
    module = result.module
    accs = [m["test_acc"] for m in runs]
    card: dict[str, Any] = {
        "model": config.model.family,
        "params": runs[0]["params"],
        "macs": runs[0]["macs"],
        # Timed as the search times a trial, so the two figures compare (median, 1 thread).
        "cpu_latency_ms": cpu_latency_ms(module.model),
        "epochs": config.epochs,
        "train_images": runs[0]["train_images"],
        "test_acc": {
            "per_seed": {str(m["seed"]): m["test_acc"] for m in runs},
            "mean": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        },
        "search_val_acc": provenance.get("val_acc"),
        "val_to_test": gap.val_to_test(
            provenance,
            test_acc=statistics.fmean(accs),
            epochs=config.epochs,
            train_images=runs[0]["train_images"],
        ),
        "throughput": {
            "cpu_batch1_img_s": throughput(module, batch_size=1, device="cpu"),
            "cpu_batch32_img_s": throughput(module, batch_size=32, device="cpu"),
            "gpu_batch32_img_s": (
                throughput(module, batch_size=32, device="cuda")
                if torch.cuda.is_available()
                else None
            ),
        },
        "lockbox": {
            "openings_this_retrain": len(runs),
            "openings_on_study": total if study is not None else None,
            "openings_in_file": total if study is None else None,
            "file": str(ledger.path) if study is None else None,
            "study": provenance.get("study"),
            "storage": safe_url(storage_url) if storage_url else provenance.get("storage"),
        },
        "checkpoints": [m["checkpoint"] for m in runs],
        "config": to_dict(config),
        "provenance": provenance,
        "packages": runs[0]["packages"],
        "git_commit": runs[0]["git_commit"],
        "device": runs[0]["device"],
        "precision": runs[0]["precision"],
    }
    card["val_to_test_gap"] = card["val_to_test"] and card["val_to_test"]["gap"]
    card["paths"] = {"json": str(out / "model_card.json"), "markdown": str(out / "model_card.md")}
    (out / "model_card.json").write_text(json.dumps(card, indent=2))
    (out / "model_card.md").write_text(render_card(card))
    paths = [out / "model_card.md", out / "model_card.json"]
    if study is not None:  # on the trial it came from
        folder = artifacts_dir(artifacts, storage_url or provenance.get("storage"))
        attach_to_trial(study, int(provenance["trial"]), paths, folder)
    return card


def render_card(card: dict[str, Any]) -> str:
    acc, tp, lock = card["test_acc"], card["throughput"], card["lockbox"]
    seeds = ", ".join(f"{s}: {a:.4f}" for s, a in acc["per_seed"].items())
    study = (
        f"{lock['openings_on_study']} in all on study {lock['study']!r}"
        if lock["openings_on_study"] is not None
        else f"{lock['openings_in_file']} in all in {lock['file']} (the config names no study)"
    )
    gpu = f"{tp['gpu_batch32_img_s']:.0f} images/s" if tp["gpu_batch32_img_s"] else "no GPU"
    lines = [
        f"# Model card: {card['model']} ({card['provenance'].get('study', 'config file')}"
        f", trial {card['provenance'].get('trial', '-')})",
        "",
        "| test accuracy | parameters | CPU latency, batch 1 |",
        "|---|---|---|",
        f"| {acc['mean']:.4f} +- {acc['std']:.4f} | {card['params']:,} "
        f"| {card['cpu_latency_ms']:.2f} ms |",
        "",
        "| | |",
        "|---|---|",
        f"| parameters | {card['params']:,} |",
        f"| multiply-accumulates per image | {card['macs']:,} |",
        f"| test accuracy, mean +- std | {acc['mean']:.4f} +- {acc['std']:.4f} |",
        f"| test accuracy per seed | {seeds} |",
        f"| search validation accuracy | {card['search_val_acc']} |",
        f"| validation-to-test gap | {gap.describe(card['val_to_test'])} |",
        f"| CPU inference, batch 1 | {tp['cpu_batch1_img_s']:.0f} images/s |",
        f"| CPU inference, batch 32 | {tp['cpu_batch32_img_s']:.0f} images/s |",
        f"| GPU inference, batch 32 | {gpu} |",
        f"| epochs, training images | {card['epochs']}, {card['train_images']:,} |",
        f"| test lockbox openings | {lock['openings_this_retrain']} by this retrain; {study} |",
        f"| device, precision | {card['device']}, {card['precision']} |",
        f"| git commit | {card['git_commit']} |",
        "",
        "Checkpoints: " + ", ".join(card["checkpoints"]),
        "",
        "Provenance: " + json.dumps(card["provenance"]),
        "",
    ]
    return "\n".join(lines)
