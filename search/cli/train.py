"""``train``: one run config, outside any study; with ``--evaluate-test``, one lockbox
opening."""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

from fmnist.config import full_train_config, load_toml, replace
from fmnist.configs import names as config_names
from fmnist.configs import resolve as resolve_config
from search import flags
from search.cli.flags import add_data, add_storage
from search.storage.reference import study_of
from search.study import lockbox


def cmd_train(args: argparse.Namespace) -> int:
    config, provenance = load_toml(resolve_config(args.config))
    changes = {}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.subset is not None:
        changes["data.subset"] = args.subset
    if args.seed is not None:
        changes["seed"] = args.seed
    config = replace(config, **changes)
    if args.full_train:  # every training image, unless --subset asks for fewer
        config = full_train_config(config, subset=args.subset)
    out = Path(args.out or f"runs/train/{time.strftime('%Y%m%d-%H%M%S')}")
    # A config exported from a study records its openings of the test set there; any other
    # in a ledger file in its output folder. Reached before anything trains.
    ledger = (
        lockbox.ledger(study_of(provenance, args.storage), out)
        if args.evaluate_test
        else None
    )
    _warn_if_split_differs(config, provenance, args)
    from fmnist.record import train_run  # Lightning: loaded once the input is known good

    metrics, _ = train_run(
        config,
        out,
        data_dir=args.data_dir,
        device=args.device,
        full_train=args.full_train,
        evaluate_test=args.evaluate_test,
        progress=sys.stderr.isatty(),
        provenance=provenance,
        before_test=ledger and partial(ledger.record, reason=f"train --evaluate-test {out}"),
    )
    for h in metrics["history"]:
        val = f"  val_acc {h['val_acc']:.4f}" if "val_acc" in h else ""
        print(
            f"epoch {h['epoch'] + 1}/{config.epochs}  train_loss {h['train_loss']:.4f}{val}"
            f"  {h['seconds']:.1f}s"
        )
    if metrics["val_acc"] is not None:
        print(
            f"validation accuracy {metrics['val_acc']:.4f} "
            f"(split {metrics['split_fingerprint']}, {metrics['train_images']} training images)"
        )
    if ledger is not None:
        print(
            f"test accuracy {metrics['test_acc']:.4f} (test lockbox opened once; "
            f"{ledger.count()} in all on {ledger.where()})"
        )
    print(f"params {metrics['params']:,}  MACs {metrics['macs']:,}  wrote {out}/metrics.json")
    return 0


def _warn_if_split_differs(config, provenance: dict, args: argparse.Namespace) -> None:
    """One line when the validation split is not the one the config was chosen on."""
    want = provenance.get("split_fingerprint")
    if not want or args.full_train:
        return
    from fmnist.data import load_train  # torch: loaded once the input is known good
    from fmnist.split import make_split  # torch, as above

    _, labels = load_train(args.data_dir)
    have = make_split(labels, config.data.val_size, config.data.split_seed).fingerprint
    if have != want:
        print(
            f"warning: this run validates on split {have}, but the config was chosen on split "
            f"{want} ([provenance]); its validation accuracy does not compare with the study's",
            file=sys.stderr,
        )


def add(sub) -> None:
    p = sub.add_parser("train", help="train one config (TOML file or shipped name)")
    p.add_argument(
        "--config",
        required=True,
        help=f"a run config TOML, or a shipped one: {', '.join(config_names())}",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--subset", type=int, help="train on N images (quick runs)")
    p.add_argument("--seed", type=flags.seed)
    p.add_argument(
        "--full-train",
        action="store_true",
        help="train on all 60k training images (no validation split; data.subset is "
        "cleared unless --subset is given)",
    )
    p.add_argument(
        "--evaluate-test",
        action="store_true",
        help="open the test lockbox once and report test accuracy",
    )
    p.add_argument("--out", help="output folder (default runs/train/<time>)")
    add_storage(
        p,
        "where the config's study records a test-set opening (default: the "
        "storage named in its [provenance])",
    )
    add_data(p)
    p.set_defaults(func=cmd_train)
