"""The peer, side by side: Optuna's published Lightning recipe (``fmnist_bench.optuna_recipe``)
and one of our study presets, each searching for the same wall time on this machine; each
one's selected model scored once on the test set.

Our side runs the study with ``--timeout``, exports its best trial and retrains that config
on every training image with one seed (``retrain``, which opens the lockbox once and counts
it on the study). Their side scores the best trial's model as the recipe leaves it."""

from __future__ import annotations

from typing import Any

from fmnist.config import load_toml
from fmnist_bench import optuna_recipe
from fmnist_bench.bench import Bench, show
from fmnist_bench.parts.studies import timed_run
from search.results.export import export
from search.results.model_card import retrain
from search.study import ResolvedStudy, resolve


def ours(b: Bench, study: ResolvedStudy) -> dict[str, Any]:
    """Our study (``study``, resolved from ``--peer-study``) for ``--peer-seconds``; its best
    trial retrained on ``--peer-images`` (default all) training images with one seed and
    scored on the test set."""
    opts = b.opts
    run = b.fresh_study("peer-ours", opts.peer_study, timeout=opts.peer_seconds)
    done = timed_run(run, study)
    path = export(done.study, None, b.work / "peer-best.toml", storage_url=run.storage)
    provenance = load_toml(path)[1]
    card = retrain(
        path,
        seeds=1,
        out_dir=str(b.work / "peer-retrain"),
        data_dir=opts.data_dir,
        device=b.device,
        storage_url=run.storage,
        subset=opts.peer_images,
    )
    return {
        "study": done.study.study_name,
        "trials": len(done.study.trials),
        "complete": len(done.complete),
        "pruned": len(done.finished) - len(done.complete),
        "wall_seconds": done.wall_seconds,
        "best_trial": provenance["trial"],
        "best_val_acc": provenance["val_acc"],
        "val_images_scored": done.study.user_attrs.get("val_size"),
        "test_acc": card["test_acc"]["mean"],
        "test_of": f"the best trial's config retrained on {card['train_images']} images, 1 seed",
        "params": card["params"],
    }


def theirs(*, seconds: float, device: str, data_dir, images: int | None) -> dict[str, Any]:
    done = optuna_recipe.search(seconds=seconds, device=device, data_dir=data_dir, images=images)
    model = done.models[done.best.number]
    test_acc = optuna_recipe.test_accuracy(model, data_dir)
    params = sum(p.numel() for p in model.parameters())
    return optuna_recipe.summary(done, test_acc) | {"params": params}


def run(b: Bench) -> dict[str, Any]:
    opts = b.opts
    seconds, images = opts.peer_seconds, opts.peer_images
    study = resolve(opts.peer_study)  # a mistake in it ends the part before any search
    them = theirs(seconds=seconds, device=b.device, data_dir=opts.data_dir, images=images)
    us = ours(b, study)
    sides = {"optuna recipe": them, f"ours, {study.name}": us}
    difference = us["test_acc"] - them["test_acc"]
    show(
        f"peer: Optuna's Lightning recipe against our {study.name!r} study, "
        f"{seconds:g} s of search each on this machine; test accuracy of each one's selected "
        f"model, scored once",
        [
            "search",
            "trials",
            "complete",
            "pruned",
            "wall s",
            "best val acc",
            "val images",
            "test acc",
            "params",
        ],
        [
            [
                label,
                s["trials"],
                s["complete"],
                s["pruned"],
                s["wall_seconds"],
                f"{s['best_val_acc']:.4f}",
                s["val_images_scored"],
                f"{s['test_acc']:.4f}",
                s["params"],
            ]
            for label, s in sides.items()
        ],
    )
    print(f"  test accuracy, ours - recipe: {100 * difference:+.2f} points")
    return {
        "peer": {
            "seconds": seconds,
            "images": images,
            "theirs": them,
            "ours": us,
            "test_acc_difference": difference,
        }
    }
