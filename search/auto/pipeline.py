"""``auto``: search, confirm the top trials, train the winner on every training image for the
epochs its share buys, score it once on the test set; all within one budget.

Every phase reuses the command that does it alone (``run``'s runner, ``confirm``, ``export``,
``retrain``). The plan (``search.auto.plan``) is stored on the study after every phase and on
an interruption, with the seconds each phase spent, so the same command resumes it: a resumed
run has the budget less what the earlier runs spent.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from fmnist.config import RunConfig, dump_toml, from_dict, load_toml, replace, stretch
from search.auto.budget import text
from search.auto.options import AutoOptions
from search.auto.plan import (
    FIRST_SEARCH_SHARE,
    MIN_CONFIRM,
    Plan,
    Split,
    chance,
    epoch_seconds,
    new_plan,
    odds,
    short_long_pairs,
    spearman,
    split_for,
    store,
    stored_plan,
)
from search.auto.probe import TRAIN_IMAGES, search_epoch_seconds, search_images
from search.errors import SearchError
from search.folders import out_folder
from search.results.confirm import confirm
from search.results.export import export
from search.results.model_card import retrain
from search.run.options import RunOptions
from search.run.plan import RunPlan, make_plan, storage_url
from search.run.runner import run
from search.run.stored import open_study
from search.storage.liveness import RETRY_OF, cut_and_waiting, enqueue_retry
from search.study import resolve
from search.trials import epoch_accuracies, finished_count, ranked

CARD_RESERVE_S = 5.0  # scoring and the card after the final training: at least this, and
CARD_RESERVE_SHARE = 0.02  # this share of the budget
MIN_SEARCH_S = 1.0  # a search stage shorter than this is not started
MIN_COMPLETE_TRIES = 3  # trials run past the search share while none has completed


class Session:
    """This process's part of a plan: the budget's clock (``origin``: when a budget that had
    spent nothing would have started) and the seconds each phase spends, stored as it goes."""

    def __init__(self, study: optuna.Study, plan: Plan, started: float, log: Callable) -> None:
        self.study, self.plan, self.log = study, plan, log
        self.origin = started - plan.total_spent
        self.mark = started

    def at(self, fraction: float) -> float:
        return self.origin + fraction * self.plan.budget_s

    def left(self) -> float:
        return self.at(1.0) - time.monotonic()

    def spend(self, phase: str) -> None:
        now = time.monotonic()
        self.plan = store(self.study, self.plan.spend(phase, now - self.mark))
        self.mark = now

    def update(self, **changes: Any) -> None:
        self.plan = store(self.study, dataclasses.replace(self.plan, **changes))

    def advance(self, phase: str) -> None:
        self.spend(self.plan.phase)
        self.update(phase=phase)

    def announce(self, phase: str, end: float) -> None:
        """The phase, the seconds it has (to ``end``) and their share of the budget, and
        what is left of the budget."""
        seconds = max(0.0, end - time.monotonic())
        self.log(
            f"auto: {phase}, {seconds / self.plan.budget_s:.0%} of the "
            f"{text(self.plan.budget_s)} budget, {seconds:.0f} s for it; {self.left():.0f} s "
            "of the budget left"
        )


def auto(opts: AutoOptions, *, started_s_ago: float = 0.0, log=print) -> dict[str, Any]:
    """Run (or resume) the plan of ``opts.budget_s`` seconds (the preset's budget where that
    is 0); the final model's card, the plan and the wall time. ``started_s_ago``: seconds
    this command ran before the call (its start-up), counted against the budget."""
    started = time.monotonic() - started_s_ago
    study = resolve(opts.study)
    if study.is_pareto:
        raise SearchError(
            f"auto trains one winner, and preset {study.name!r} searches a Pareto front; run "
            "it with `run`, then `export --pareto`, or give auto a single-objective preset"
        )
    opts = opts.with_budget_of(study)
    name = opts.name_of(study.name)
    out = out_folder(opts.out_dir or f"runs/auto/{name}")
    out.mkdir(parents=True, exist_ok=True)
    run_opts = RunOptions(
        study=opts.study,
        storage=opts.storage,
        study_name=name,
        seed=opts.seed,
        out_dir=str(out / "search"),
        data_dir=opts.data_dir,
        device=opts.device,
    )
    url = storage_url(run_opts, study)
    run_plan = make_plan(run_opts, study)
    stored, _ = open_study(run_plan, url)
    plan = stored_plan(stored)
    if plan is None:
        probe = search_epoch_seconds(study, data_dir=opts.data_dir, device=opts.device)
        plan = new_plan(
            budget_s=opts.budget_s,
            study=study.name,
            epochs=study.preset.epochs,
            images=search_images(study),
            probe_s=probe,
        )
        plan = store(stored, plan)
        log(f"auto: a search epoch of the preset's recipe takes about {probe:.1f} s here")
    elif plan.budget_s != opts.budget_s:
        raise SearchError(
            f"study {name!r} holds an auto plan for --budget {text(plan.budget_s)}; resume "
            f"with that budget or pick a new --study-name"
        )
    elif plan.phase == "done":
        log(f"auto: study {name!r} already finished its plan; model card: {plan_card(out)}")
        return summary(stored, plan, out, url)
    session = Session(stored, plan, started, log)
    session.spend("start")
    try:
        if session.plan.phase == "search":
            search_phase(session, run_plan, url, opts.split)
        if session.plan.phase == "confirm":
            confirm_phase(session, opts, out)
        if session.plan.phase == "final":
            final_phase(session, opts, out, url)
    except BaseException:  # Ctrl-C, a lost storage: what this run spent still counts
        session.spend(session.plan.phase)
        log(
            f"auto: stopped in the {session.plan.phase} phase; the plan is stored on study "
            f"{name!r}: rerun the same command to continue it"
        )
        raise
    result = summary(stored, session.plan, out, url)
    if opts.seeds:
        result["extra_seeds"] = extra_seeds(opts, out, url, result["card"])
    write_card(out, result)
    return result


def search_phase(session: Session, run_plan: RunPlan, url: str, fixed: Split | None) -> None:
    if session.plan.split is None and fixed is not None:
        session.update(split=fixed)
    if session.plan.split is None:
        search_until(session, FIRST_SEARCH_SHARE, run_plan, url)
        if cut := continue_cut(session.study):
            session.log(
                f"auto: trial(s) {', '.join(map(str, cut))} cut by the first share's end go "
                "on from their checkpoints next"
            )
        short, long = short_long_pairs(session.study)
        rho, luck = spearman(short, long), chance(short, long)
        split = split_for(rho, luck)
        session.update(rank_corr=rho, rank_pairs=len(short), rank_chance=luck, split=split)
        measured = "unmeasured" if rho is None else f"{rho:+.2f} ({odds(luck)})"
        session.log(
            f"auto: rank correlation of first-epoch against last-epoch accuracy over "
            f"{len(short)} trials: {measured}; {split.why} (search {split.search:.0%}, "
            f"confirm {split.confirm:.0%}, final training at least {split.final:.0%})"
        )
    finish = finishing_s(session.study, session.plan)
    search_until(session, session.plan.share_end("search"), run_plan, url, at_least_s=finish)
    for _ in range(MIN_COMPLETE_TRIES):  # the share bought no complete trial: buy one
        if ranked(session.study):
            break
        goal = finished_count(session.study) + 1
        session.log("auto: the search share finished no trial; one more trial, over its share")
        run(run_plan.but(n_trials=goal).with_timeout(run_plan.timeout_s), url)
    session.advance("confirm")


def continue_cut(study: optuna.Study) -> list[int]:
    """Queue a continuation of every trial the first search share's end cut (pruned by the
    timeout, not by the pruner), resuming from the checkpoint of the epoch it stopped at: the
    pause is only where the split is chosen, and a cut trial may be the study's best (a
    0.87M net at 0.932 after 5 of 6 epochs, on 2 cores). Returns the numbers queued."""
    cut = cut_and_waiting(study.get_trials(deepcopy=False))
    return [t.number for t in cut if enqueue_retry(study, t)]


def finishing_s(study: optuna.Study, plan: Plan) -> float:
    """Seconds the queued continuations of cut trials need to finish: the epochs each lacks,
    at its cut trial's measured epoch time. A share shorter than that would cut them again
    (a 15-minute `cpu` budget cut its best 0.87M trial at 3 of 6 epochs, then its
    continuation at 4, and trained the recipe instead)."""
    trials = study.get_trials(deepcopy=False)
    seconds = 0.0
    for t in trials:
        if t.state == TrialState.WAITING and (origin := t.user_attrs.get(RETRY_OF)) is not None:
            cut = trials[origin]
            done = max(epoch_accuracies(cut), default=-1) + 1
            lacking = max(0, plan.search_epochs - done)
            seconds += lacking * (epoch_seconds(cut) or plan.probe_epoch_s)
    return seconds


def search_until(
    session: Session, fraction: float, run_plan: RunPlan, url: str, at_least_s: float = 0.0
) -> None:
    """Search until ``fraction`` of the budget is spent: the runner's timeout, less one epoch,
    since a running trial stops at its next epoch end; or for ``at_least_s``, the time the
    continuations of cut trials need to finish, where that is longer."""
    trials = session.study.get_trials(deepcopy=False)
    epoch = max([session.plan.probe_epoch_s, *filter(None, map(epoch_seconds, trials))])
    end = session.at(fraction)
    timeout = end - time.monotonic() - epoch
    if at_least_s > max(timeout, 0.0):
        session.log(
            f"auto: the search share is extended by {at_least_s - max(timeout, 0):.0f} s so "
            "that the trial(s) a share's end cut can finish"
        )
        timeout, end = at_least_s, time.monotonic() + at_least_s + epoch
    if timeout < MIN_SEARCH_S:
        return
    session.announce("search", end)
    run(run_plan.with_timeout(timeout), url)


def confirm_phase(session: Session, opts: AutoOptions, out: Path) -> None:
    plan = session.plan
    split = plan.split or split_for(None, None)
    epochs = plan.search_epochs * split.confirm_factor
    end = session.at(plan.share_end("confirm"))
    top = ranked(session.study)[: split.confirm_max]
    if not top:
        raise SearchError(
            f"study {session.study.study_name!r} has no complete trial after its search "
            "share; give a larger --budget or a preset with faster trials"
        )
    count = affordable(top, epochs, end - time.monotonic(), plan.probe_epoch_s)
    rho = None
    if count:
        session.announce(f"confirm (top {count} at {epochs} epochs)", end)
        ranking = confirm(
            session.study,
            top=count,
            seeds=1,
            out_dir=out / "confirm",
            data_dir=opts.data_dir,
            device=opts.device,
            progress=lambda line: session.log(f"{line} ({session.left():.0f} s left)"),
            epochs=epochs,
        )
        rho = spearman([r["search_val_acc"] for r in ranking], [r["mean"] for r in ranking])
    else:
        session.log(
            f"auto: confirm skipped, its share buys no run of {MIN_CONFIRM} of the top trials "
            "at the confirmation's length; its time goes to the final training"
        )
    session.update(confirm_top=count, confirm_epochs=epochs, confirm_rank_corr=rho)
    session.advance("final")


def card_reserve(budget_s: float) -> float:
    """Seconds a budget keeps back from its final training for scoring and the card."""
    return max(CARD_RESERVE_S, CARD_RESERVE_SHARE * budget_s)


def affordable(top: list, epochs: int, left_s: float, probe_s: float) -> int:
    """How many of ``top`` (best first) confirming at ``epochs`` buys in ``left_s``, at their
    measured epoch times; 0 where that is fewer than ``MIN_CONFIRM``: confirming the best
    trial alone ranks nothing, and would only take epochs from the final training (a 15-minute
    `cpu` budget gave 26% to one such run)."""
    count = 0
    for trial in top:
        left_s -= (epoch_seconds(trial) or probe_s) * epochs
        if left_s < 0:
            break
        count += 1
    return count if count >= MIN_CONFIRM else 0


def final_phase(session: Session, opts: AutoOptions, out: Path, url: str) -> None:
    """The confirmed winner (else the best trial) on every training image, for the epochs the
    rest of the budget buys at its measured epoch time, its schedule stretched to them, then
    re-planned as its own epochs are timed so that it ends by the budget's end, scoring
    reserved (``fmnist.deadline``)."""
    path = export(session.study, None, out / "final.toml", storage_url=url)
    config, provenance = load_toml(path)
    winner = session.study.get_trials(deepcopy=False)[int(provenance["trial"])]
    per_image = (epoch_seconds(winner) or session.plan.probe_epoch_s) / session.plan.search_images
    epoch_s = per_image * (opts.final_images or TRAIN_IMAGES)
    reserve = card_reserve(session.plan.budget_s)
    until, room = session.at(1.0) - reserve, session.left() - reserve
    epochs = max(1, math.floor(room / epoch_s))
    provenance |= {"searched_epochs": config.epochs, "auto_budget_s": session.plan.budget_s}
    path.write_text(dump_toml(stretch(config, epochs), provenance))
    session.update(final_room_s=room, final_epochs=epochs, final_epoch_s=epoch_s)
    session.announce(f"final training ({epochs} epochs)", session.at(1.0))
    card = retrain(
        path,
        seeds=1,
        out_dir=str(out / "final"),
        data_dir=opts.data_dir,
        device=opts.device,
        storage_url=url,
        subset=opts.final_images,
        until=until,  # re-planned at each epoch's end to end by then
    )
    # as trained (the card's epochs), for the extra seeds (``extra_seeds``) to train the same
    path.write_text(dump_toml(from_dict(RunConfig, card["config"]), provenance))
    session.advance("done")


def plan_card(out: Path) -> Path:
    return out / "final" / "model_card.json"


def summary(stored: optuna.Study, plan: Plan, out: Path, url: str) -> dict[str, Any]:
    card = json.loads(plan_card(out).read_text())
    return {
        "study": stored.study_name,
        "storage": url,
        "plan": plan.to_dict(),
        "wall_s": plan.total_spent,
        "within_budget": plan.total_spent <= plan.budget_s,
        "card": card,
        "paths": {"card": str(out / "auto_card.md"), "final_card": str(plan_card(out))},
    }


def extra_seeds(opts: AutoOptions, out: Path, url: str, card: dict[str, Any]) -> dict[str, Any]:
    """The final training again with ``opts.seeds`` more seeds, after the budget and outside
    it: the card's mean +- std."""
    config, provenance = load_toml(out / "final.toml")
    path = out / "extra-seeds.toml"
    path.write_text(dump_toml(replace(config, seed=config.seed + 1), provenance))
    extra = retrain(
        path,
        seeds=opts.seeds,
        out_dir=str(out / "extra-seeds"),
        data_dir=opts.data_dir,
        device=opts.device,
        storage_url=url,
        subset=opts.final_images,
    )
    per_seed = card["test_acc"]["per_seed"] | extra["test_acc"]["per_seed"]
    accs = list(per_seed.values())
    return {
        "label": f"{opts.seeds} extra seed(s), trained after the budget and outside it",
        "per_seed": per_seed,
        "mean": statistics.fmean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
    }


def write_card(out: Path, result: dict[str, Any]) -> None:
    """``auto_card.json`` (everything) and ``auto_card.md`` (the plan beside the result)."""
    (out / "auto_card.json").write_text(json.dumps(result, indent=2, default=str))
    plan, card = result["plan"], result["card"]
    split = plan["split"] or {}
    corr, epochs = plan["rank_corr"], card["epochs"]  # as trained: a deadline re-plans them
    measured = "unmeasured" if corr is None else f"{corr:+.2f}, {odds(plan.get('rank_chance'))}"
    rows = [
        ("budget", f"{text(plan['budget_s'])} ({plan['budget_s']:.0f} s)"),
        ("spent, by phase", ", ".join(f"{k} {v:.1f} s" for k, v in plan["spent_s"].items())),
        ("spent in all", f"{result['wall_s']:.1f} s"),
        (
            "rank correlation, first vs last epoch",
            f"{measured} ({plan['rank_pairs']} trials)",
        ),
        ("split rule", split.get("why", "-")),
        ("confirmed", f"top {plan['confirm_top']} at {plan['confirm_epochs']} epochs"),
        ("final training", f"{epochs} epochs, about {plan['final_epoch_s']:.1f} s each"),
        ("test accuracy, in the budget (1 seed, scored once)", f"{card['test_acc']['mean']:.4f}"),
    ]
    if extra := result.get("extra_seeds"):
        label = f"test accuracy, mean +- std ({extra['label']})"
        rows.append((label, f"{extra['mean']:.4f} +- {extra['std']:.4f}"))
    rows.append(("parameters", f"{card['params']:,}"))
    lines = [f"# auto: study {result['study']!r}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", f"The final model's own card: {result['paths']['final_card']}", ""]
    (out / "auto_card.md").write_text("\n".join(lines))
