"""Train a few configs at one length on the validation split and write their curves to one
JSON: how a choice made at the search's short length holds at the final training's length.

    python tools/horizon_check.py A.toml B.toml ... --epochs 20 --json docs/results/NAME.json

Each config is trained by ``fmnist-search train --epochs N`` on the training images outside
its validation split (never the test set), one after another on this machine (a one-cycle
schedule spans whatever epochs it is given); the JSON keeps each run's validation accuracy
per epoch, its config and the machine. ``docs_figures`` renders the table from it (region
``horizon-20ep``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmnist_bench.machine import probe  # noqa: E402
from search.cli import main as fmnist_search  # noqa: E402

# What the JSON keeps of each run's metrics.json, beside its validation curve.
KEPT = ("val_acc", "best_val_acc", "params", "epoch_seconds", "config", "git_commit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="run config TOML files")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--json", required=True, help="where to write the figures")
    parser.add_argument("--out", default="runs/horizon", help="the runs' folders go here")
    parser.add_argument("--data-dir")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    started, runs, machine = time.time(), {}, probe(args.device)
    for path in map(Path, args.configs):
        if tomllib.loads(path.read_text()).get("data", {}).get("val_size", 1) <= 0:
            parser.error(f"{path} trains on every image: give it a validation split")
        print(f"horizon: {path.stem}, {args.epochs} epochs", flush=True)
        out = Path(args.out) / path.stem
        train = ["train", "--config", str(path), "--epochs", str(args.epochs), "--out", str(out)]
        train += ["--device", args.device] + (
            ["--data-dir", args.data_dir] if args.data_dir else []
        )
        if fmnist_search(train) != 0:
            return 1
        metrics = json.loads((out / "metrics.json").read_text())
        runs[path.stem] = {
            "config_file": str(path),
            "val_curve": [h["val_acc"] for h in metrics["history"]],
            **{k: metrics[k] for k in KEPT},
        }
        print(f"horizon: {path.stem}: validation {metrics['val_acc']:.4f}", flush=True)
    result = {
        "argv": ["python", "tools/horizon_check.py", *(argv or sys.argv[1:])],
        "machine": machine,
        "epochs": args.epochs,
        "seconds": time.time() - started,
        "runs": runs,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
