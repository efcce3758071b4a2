"""Taking a study's result out: ``export`` a trial's config, ``retrain`` it on all training
images and open the test lockbox once per seed."""

from __future__ import annotations

import argparse
from pathlib import Path

from search import flags
from search.cli.flags import add_artifacts, add_data, add_storage
from search.errors import SearchError
from search.folders import out_folder
from search.results import confirm
from search.results.export import export, export_front
from search.storage import load_study

RETRAIN_HELP = (
    "train an exported config on all 60k images per seed, score it once on the test set, "
    "write a model card"
)
CONFIRM_HELP = (
    "retrain a study's top trials with fresh seeds on the same split, rank them by mean "
    "validation accuracy, export the winner"
)


def cmd_export(args: argparse.Namespace) -> int:
    study = load_study(args.study, args.storage)
    if args.pareto:
        if args.trial is not None:
            raise SearchError("export: give --trial N or --pareto, not both")
        folder = out_folder(args.output or "front", "--output")
        paths = export_front(study, folder, storage_url=args.storage)
        print(f"wrote {len(paths)} configs, one per front point, to {folder}:")
        print("\n".join(f"  {p}" for p in paths))
        print(f"retrain each with: fmnist-search retrain {folder}/trial-NNNN.toml --seeds 3")
        return 0
    path = export(study, args.trial, Path(args.output or "best.toml"), storage_url=args.storage)
    print(f"wrote {path}; train it with: fmnist-search retrain {path} --seeds 3")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    # Deferred: Lightning, which `export`, `confirm`'s parser and a refused flag do not need.
    from search.results.model_card import retrain

    card = retrain(
        Path(args.config),
        seeds=args.seeds,
        out_dir=args.out and str(out_folder(args.out)),
        data_dir=args.data_dir,
        device=args.device,
        storage_url=args.storage,
        artifacts=args.artifacts,
        subset=args.subset,
    )
    accs, seeds = card["test_acc"], len(card["test_acc"]["per_seed"])
    summary = f"test accuracy {accs['mean']:.4f} +- {accs['std']:.4f} over {seeds} seeds"
    print(f"{summary}; model card: {card['paths']['markdown']}")
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    study = load_study(args.study, args.storage)
    options = {"top": args.top, "seeds": args.seeds, "out_dir": out_folder(args.out)}
    confirm.confirm(study, data_dir=args.data_dir, device=args.device, **options)
    print(confirm.confirmed_table(study))
    path = export(study, None, Path(args.output), storage_url=args.storage)
    print(f"wrote the confirmed winner to {path}; train it with: fmnist-search retrain {path}")
    return 0


def add(sub) -> None:
    p = sub.add_parser("export", help="write the best (or a chosen) trial's config as TOML")
    p.add_argument("--study", required=True)
    p.add_argument("--trial", type=flags.whole(0), help="trial number (default: the best)")
    p.add_argument(
        "-o", "--output", help="file (default best.toml); with --pareto a folder (default front/)"
    )
    p.add_argument(
        "--pareto",
        action="store_true",
        help="one config per point of the front (accuracy against the study's costs, or "
        "against parameters) as DIR/trial-NNNN.toml",
    )
    add_storage(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("retrain", help=RETRAIN_HELP)
    p.add_argument("config", help="a config TOML from `export`")
    p.add_argument("--seeds", type=flags.count, default=3)
    p.add_argument(
        "--subset", type=int, help="train on N images instead of all 60k (a quick check)"
    )
    p.add_argument("--out", help="output folder (default runs/retrain/<study>-trial<N>)")
    add_storage(p)
    add_data(p)
    add_artifacts(p)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("confirm", help=CONFIRM_HELP)
    p.add_argument("--study", required=True)
    p.add_argument("--top", type=flags.count, default=3, help="trials to confirm (default 3)")
    p.add_argument("--seeds", type=flags.count, default=3, help="fresh seeds per trial (default 3)")
    p.add_argument("-o", "--output", default="best.toml", help="the winner's config file")
    p.add_argument("--out", default="runs/confirm", help="training logs (default runs/confirm)")
    add_storage(p)
    add_data(p)
    p.set_defaults(func=cmd_confirm)
