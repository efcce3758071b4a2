"""Looking at studies: ``studies``, ``show``, ``report``, ``dashboard``, and ``spaces``."""

from __future__ import annotations

import argparse
import socket

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

import spaces
from fmnist.config import RunConfig, dump_toml, from_dict
from search import flags
from search.cli.flags import add_artifacts, add_storage
from search.errors import SearchError
from search.folders import out_folder
from search.results.confirm import confirmed_table
from search.results.console import front_table, top_table
from search.storage import DEFAULT_URL, load_study, open_storage, safe_url
from search.storage.artifact_folder import artifacts_dir
from search.study import lockbox, names
from search.trials import pruning_figures, ranked


def cmd_studies(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage, create=False)
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
    print(f"\n{confirmed_table(study)}")
    print(f"\n{lockbox.summary(study)}")
    best = ranked(study)
    if best:
        config = from_dict(RunConfig, best[0].user_attrs["config"])
        print(f"\nbest config (trial {best[0].number}):\n{dump_toml(config)}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard  # its web server and bundled pages load only for this command

    _port_free(args.host, args.port)
    storage = open_storage(args.storage, create=False)
    folder = artifacts_dir(args.artifacts, args.storage)
    print(
        f"optuna-dashboard on http://{args.host}:{args.port} for "
        f"{safe_url(args.storage or DEFAULT_URL)}, artifacts in {folder} (Ctrl-C stops it)"
    )
    optuna_dashboard.run_server(
        storage, host=args.host, port=args.port, artifact_store=FileSystemArtifactStore(folder)
    )
    return 0


def _port_free(host: str, port: int) -> None:
    """Refuse a taken port in one line, before the server starts (it would end in a
    traceback from deep inside the web server)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise SearchError(
                f"--port {port} on {host} is not free ({e.strerror}); pass another --port"
            ) from None


def cmd_report(args: argparse.Namespace) -> int:
    # Deferred: the report's plotting loads torch and matplotlib, which the other commands do not.
    from search.results.report import build

    study = load_study(args.study, args.storage)
    report = build(
        study,
        out_folder(args.output, "--output"),
        top=args.top,
        artifacts=artifacts_dir(args.artifacts, args.storage),
        storage_label=safe_url(args.storage or DEFAULT_URL),
    )
    print(f"wrote {report.html}, {report.markdown} and {len(report.pngs)} PNGs")
    for name, why in report.skipped.items():
        print(f"  not drawn: {name}: {why}")
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    for name in spaces.names():
        space = spaces.get(name)
        print(f"{name} (family {space.family}, version {space.version})")
        for pname, dim in space.dims.items():
            print(f"  {pname:<24} {dim.describe():<40} default {dim.default}")
    print(f"\nstudy presets: {', '.join(names())}")
    return 0


def add(sub) -> None:
    p = sub.add_parser("studies", help="list the studies in a storage")
    add_storage(p)
    p.set_defaults(func=cmd_studies)

    p = sub.add_parser("show", help="top trials, best config and pruning figures of a study")
    p.add_argument("--study", required=True)
    p.add_argument("--top", type=flags.count, default=5, help="trials in the table (default 5)")
    add_storage(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("dashboard", help="optuna-dashboard on a storage")
    add_storage(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=flags.whole(1, 65535), default=8080)
    add_artifacts(p)
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("report", help="a study as an HTML page, PNG plots and a Markdown summary")
    p.add_argument("--study", required=True)
    p.add_argument("-o", "--output", default="report", help="output folder (default report/)")
    p.add_argument(
        "--top", type=flags.count, default=10, help="trials in the top-k table (default 10)"
    )
    add_storage(p)
    add_artifacts(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("spaces", help="list each search space's parameters and ranges")
    p.set_defaults(func=cmd_spaces)
