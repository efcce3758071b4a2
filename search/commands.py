"""The search subcommands: run, studies, show, export, retrain, dashboard, report, spaces."""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search import preset as presets
from search.errors import SearchError
from search.storage import DEFAULT_URL, open_storage, safe_url


def _storage_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help=f"SQLAlchemy URL or redis:// URL (default {DEFAULT_URL})")


def _artifacts_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--artifacts",
        metavar="DIR",
        help="artifact store folder (default: beside a SQLite file, else runs/artifacts, "
        "or for `run` artifacts/ under its --out)",
    )


def load_study(name: str, storage_url: str | None) -> optuna.Study:
    storage = open_storage(storage_url)
    known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if name not in known:
        raise SearchError(
            f"no study {name!r} in {safe_url(storage_url or DEFAULT_URL)}; "
            f"studies there: {', '.join(known) or 'none'}"
        )
    return optuna.load_study(study_name=name, storage=storage)


def cmd_run(args: argparse.Namespace) -> int:
    from search.console import top_table
    from search.runner import RunOptions, run

    gpus = tuple(int(g) for g in args.gpus.split(",")) if args.gpus else ()
    study = run(
        RunOptions(
            study=args.study,
            n_trials=args.n_trials,
            timeout=args.timeout,
            storage=args.storage,
            study_name=args.study_name,
            seed=args.seed,
            data_dir=args.data_dir,
            device=args.device,
            out_dir=args.out,
            workers=args.workers,
            gpus=gpus,
            workers_per_gpu=args.workers_per_gpu,
            worker_index=args.worker_index,
            grace_s=args.heartbeat_grace,
            storage_retry_s=args.storage_retry,
            artifacts=args.artifacts,
        )
    )
    if args.worker_index is None:
        print(top_table(study))
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not summaries:
        print(f"no studies in {safe_url(args.storage or DEFAULT_URL)}")
        return 0
    print(f"{'study':<24} {'complete':>8} {'pruned':>7} {'failed':>7} {'running':>8} {'best':>8}")
    for s in summaries:
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        count = {state: sum(t.state == state for t in trials) for state in TrialState}
        done = [t.values[0] for t in trials if t.state == TrialState.COMPLETE]
        best = f"{max(done):.4f}" if done else "-"
        print(
            f"{s.study_name:<24} {count[TrialState.COMPLETE]:>8} {count[TrialState.PRUNED]:>7} "
            f"{count[TrialState.FAIL]:>7} {count[TrialState.RUNNING]:>8} {best:>8}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from fmnist.config import RunConfig, dump_toml, from_dict
    from search.console import pruning_figures, ranked, top_table
    from search.pareto import front_table

    study = load_study(args.study, args.storage)
    print(top_table(study, args.top))
    f = pruning_figures(study)
    if f["trials"]:
        saved = 1 - f["epochs_trained"] / max(1, f["epochs_without_pruning"])
        print(
            f"\npruning: {f['pruned']} of {f['trials']} finished trials pruned; "
            f"{f['epochs_trained']} epochs trained vs {f['epochs_without_pruning']} without "
            f"pruning ({saved:.0%} saved)"
        )
    if f["rejected"]:
        print(f"constraints: {f['rejected']} configs rejected over budget, 0 epochs trained")
    print(f"\n{front_table(study)}")
    best = ranked(study)
    if best:
        config = from_dict(RunConfig, best[0].user_attrs["config"])
        print(f"\nbest config (trial {best[0].number}):\n{dump_toml(config)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from search.export import export, export_front

    study = load_study(args.study, args.storage)
    if args.pareto:
        if args.trial is not None:
            raise SearchError("export: give --trial N or --pareto, not both")
        folder = Path(args.output or "front")
        paths = export_front(study, folder, storage_url=args.storage)
        print(f"wrote {len(paths)} configs, one per front point, to {folder}:")
        print("\n".join(f"  {p}" for p in paths))
        print(f"retrain each with: fmnist-search retrain {folder}/trial-NNNN.toml --seeds 3")
        return 0
    path = export(study, args.trial, Path(args.output or "best.toml"), storage_url=args.storage)
    print(f"wrote {path}; train it with: fmnist-search retrain {path} --seeds 3")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from search.retrain import retrain

    card = retrain(
        Path(args.config),
        seeds=args.seeds,
        out_dir=args.out,
        data_dir=args.data_dir,
        device=args.device,
        storage_url=args.storage,
        artifacts=args.artifacts,
    )
    accs = card["test_acc"]
    print(
        f"test accuracy {accs['mean']:.4f} +- {accs['std']:.4f} over {len(accs['per_seed'])} "
        f"seeds; model card: {card['paths']['markdown']}"
    )
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore

    from search.artifacts import artifacts_dir

    storage = open_storage(args.storage)
    folder = artifacts_dir(args.artifacts, args.storage)
    print(
        f"optuna-dashboard on http://{args.host}:{args.port} for "
        f"{safe_url(args.storage or DEFAULT_URL)}, artifacts in {folder} (Ctrl-C stops it)"
    )
    optuna_dashboard.run_server(
        storage, host=args.host, port=args.port, artifact_store=FileSystemArtifactStore(folder)
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from search.artifacts import artifacts_dir
    from search.report import build

    study = load_study(args.study, args.storage)
    report = build(
        study,
        Path(args.output),
        top=args.top,
        artifacts=artifacts_dir(args.artifacts, args.storage),
        storage_label=safe_url(args.storage or DEFAULT_URL),
    )
    print(f"wrote {report.html}, {report.markdown} and {len(report.pngs)} PNGs")
    for name, why in report.skipped.items():
        print(f"  not drawn: {name}: {why}")
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    import spaces

    for name in spaces.names():
        space = spaces.get(name)
        print(f"{name} (family {space.family}, version {space.version})")
        for pname, dim in space.dims.items():
            print(f"  {pname:<24} {dim.describe():<40} default {dim.default}")
    print(f"\nstudy presets: {', '.join(presets.names())}")
    return 0


def add_subcommands(sub, add_data) -> None:
    p = sub.add_parser("run", help="create or resume a study and run its trials")
    p.add_argument(
        "--study",
        required=True,
        help=f"a preset ({', '.join(presets.names())}) or a preset .toml path",
    )
    p.add_argument(
        "--n-trials", type=int, help="finished trials the study should hold in total (resume-safe)"
    )
    p.add_argument("--timeout", type=float, help="stop starting trials after SEC seconds")
    _storage_arg(p)
    p.add_argument("--study-name", help="name in the storage (default: the preset's name)")
    p.add_argument("--seed", type=int, help="sampler seed (default: the preset's)")
    p.add_argument("--out", default="runs", help="trial logs folder (default runs/)")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes on this machine (default 1)"
    )
    p.add_argument("--gpus", help="comma-separated GPU indices to spread workers over")
    p.add_argument(
        "--workers-per-gpu",
        type=int,
        default=1,
        help="workers packed on each GPU of --gpus (default 1)",
    )
    p.add_argument(
        "--heartbeat-grace",
        type=float,
        default=30.0,
        metavar="SEC",
        help="a RUNNING trial silent this long lost its worker: it is failed and "
        "retried from its last checkpoint (default 30)",
    )
    p.add_argument(
        "--storage-retry",
        type=float,
        default=120.0,
        metavar="SEC",
        help="how long a worker retries a lost storage connection before it stops "
        "with an error (default 120)",
    )
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    add_data(p)
    _artifacts_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("studies", help="list the studies in a storage")
    _storage_arg(p)
    p.set_defaults(func=cmd_studies)

    p = sub.add_parser("show", help="top trials, best config and pruning figures of a study")
    p.add_argument("--study", required=True)
    p.add_argument("--top", type=int, default=5)
    _storage_arg(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="write the best (or a chosen) trial's config as TOML")
    p.add_argument("--study", required=True)
    p.add_argument("--trial", type=int, help="trial number (default: the best)")
    p.add_argument(
        "-o", "--output", help="file (default best.toml); with --pareto a folder (default front/)"
    )
    p.add_argument(
        "--pareto",
        action="store_true",
        help="one config per point of the front (accuracy against the study's costs, or "
        "against parameters) as DIR/trial-NNNN.toml",
    )
    _storage_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "retrain",
        help="train an exported config on all 60k images per seed, "
        "score it once on the test set, write a model card",
    )
    p.add_argument("config", help="a config TOML from `export`")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", help="output folder (default runs/retrain/<study>-trial<N>)")
    _storage_arg(p)
    add_data(p)
    _artifacts_arg(p)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("dashboard", help="optuna-dashboard on a storage")
    _storage_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    _artifacts_arg(p)
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("report", help="a study as an HTML page, PNG plots and a Markdown summary")
    p.add_argument("--study", required=True)
    p.add_argument("-o", "--output", default="report", help="output folder (default report/)")
    p.add_argument("--top", type=int, default=10, help="trials in the top-k table (default 10)")
    _storage_arg(p)
    _artifacts_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("spaces", help="list each search space's parameters and ranges")
    p.set_defaults(func=cmd_spaces)
