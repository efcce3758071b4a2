"""``fmnist-search report``: a study as one self-contained HTML page (plotly, script inline),
a PNG of every plot (matplotlib) and a Markdown summary.

Every plot is drawn by Optuna's own visualisation: the same call goes to
``optuna.visualization`` for the page and to ``optuna.visualization.matplotlib`` for the PNG.
The only thing added is marking pruned trials on the intermediate-values plot.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import optuna
from optuna.search_space import intersection_search_space
from optuna.trial import FrozenTrial, TrialState

from search.results.artifacts import CONFUSION, CURVES


@dataclass(frozen=True)
class Plot:
    name: str  # the PNG's stem and the HTML anchor
    title: str
    draw: Callable[[ModuleType], Any]  # given optuna.visualization or its .matplotlib
    needs: str | None = None  # why it cannot be drawn, or None


@dataclass
class Report:
    html: Path
    markdown: Path
    pngs: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    best_trial_pngs: list[Path] = field(default_factory=list)


def target_of(study: optuna.Study) -> tuple[Callable[[FrozenTrial], float] | None, str]:
    """The value the single-objective plots show: the study's value, or its first objective
    (validation accuracy) when it has several."""
    names = study.metric_names or ["validation accuracy"] * len(study.directions)
    if len(study.directions) == 1:
        return None, names[0]
    return (lambda t: t.values[0]), names[0]


def varying_params(study: optuna.Study) -> list[str]:
    """Parameters that took more than one possible value (a preset's one-value ranges do not)."""
    return sorted(
        {
            name
            for t in study.get_trials(deepcopy=False)
            for name, d in t.distributions.items()
            if not d.single()
        }
    )


def plots(study: optuna.Study) -> list[Plot]:
    target, target_name = target_of(study)
    kw = {"target": target, "target_name": target_name}
    trials = study.get_trials(deepcopy=False)
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    none_complete = "no completed trial" if complete == 0 else None
    pruned = {t.number for t in trials if t.state == TrialState.PRUNED}
    varying = varying_params(study)
    # PED-ANOVA, Optuna's default, takes a given target as one to minimise; accuracy is not.
    importance_kw = kw | ({"target": lambda t: -t.values[0]} if target else {})
    # Over the parameters every completed trial has and that varied: a fixed one is not
    # "unimportant", and a branch's parameter missing from some trials is an error there.
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    common = intersection_search_space(done) if done else {}
    importance_kw["params"] = [p for p in varying if p in common]
    importance_needs = None
    if complete < 2:
        importance_needs = "fewer than two completed trials"
    elif not importance_kw["params"]:
        importance_needs = "no parameter varied in every completed trial"

    def intermediate(vis: ModuleType):
        return mark_pruned(vis.plot_intermediate_values(study), pruned, target_name)

    out = [
        Plot(
            "optimization_history",
            "Optimisation history",
            lambda vis: vis.plot_optimization_history(study, **kw),
            none_complete,
        ),
        Plot(
            "param_importances",
            "Parameter importances",
            lambda vis: vis.plot_param_importances(study, **importance_kw),
            importance_needs,
        ),
        Plot(
            "intermediate_values",
            "Validation accuracy per epoch (dotted, ending in x: pruned)",
            intermediate,
            None
            if any(t.intermediate_values for t in trials)
            else "no trial reported per-epoch values",
        ),
        Plot(
            "parallel_coordinate",
            "Parallel coordinates",
            lambda vis: vis.plot_parallel_coordinate(study, params=varying, **kw),
            none_complete or (None if varying else "no parameter varied"),
        ),
    ]
    out += [
        Plot(
            f"slice_{p}",
            f"Slice: {p}",
            lambda vis, p=p: vis.plot_slice(study, params=[p], **kw),
            none_complete,
        )
        for p in varying
    ]
    if len(study.directions) > 1:
        out.append(
            Plot(
                "pareto_front",
                "Pareto front",
                lambda vis: vis.plot_pareto_front(study, target_names=study.metric_names),
                none_complete,
            )
        )
    return out


def mark_pruned(figure, pruned: set[int], target_name: str):
    """Optuna's intermediate-values plot draws every trial alike; dot the line of each pruned
    trial and put an x where it stopped (plotly figure or matplotlib axes)."""
    if hasattr(figure, "data"):  # plotly
        for trace in figure.data:
            number = _trial_number(trace.name)
            if number in pruned:
                k = len(trace.x)
                trace.update(
                    name=f"{trace.name} (pruned)",
                    line={"dash": "dot"},
                    marker={"symbol": ["circle"] * (k - 1) + ["x"], "size": [6] * (k - 1) + [13]},
                )
        last = max((max(trace.x) for trace in figure.data if trace.x), default=0)
        figure.update_layout(
            showlegend=True, xaxis_title="epoch (0 = first)", yaxis_title=target_name
        )
        figure.update_xaxes(tick0=0, dtick=max(1, math.ceil(last / 10)))  # whole epochs
        return figure
    from matplotlib.ticker import MaxNLocator

    ax = figure
    for line in list(ax.get_lines()):
        number = _trial_number(line.get_label())
        if number in pruned:
            line.set_linestyle(":")
            line.set_label(f"{line.get_label()} (pruned)")
            x, y = line.get_data()
            ax.plot(x[-1:], y[-1:], "x", color=line.get_color(), markersize=11, mew=2.5)
    ax.set(xlabel="epoch (0 = first)", ylabel=target_name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend() is not None:
        ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", borderaxespad=0.0, fontsize=8)
    return ax


def _trial_number(label: str | None) -> int | None:
    match = re.fullmatch(r"Trial(\d+)", label or "")
    return int(match.group(1)) if match else None


def build(
    study: optuna.Study,
    out: Path,
    *,
    top: int = 10,
    artifacts: Path | None = None,
    storage_label: str = "",
) -> Report:
    """Write ``report.html``, ``summary.md`` and one PNG per plot into ``out``.

    Args:
        study: the study to report on.
        out: the folder to write into (created; files of an earlier report are replaced).
        top: how many trials the top-k table lists.
        artifacts: the study's artifact folder; the best trial's learning curves and
            confusion matrix are taken from there when present.
        storage_label: the storage, as the summary should name it.

    Example::

        study = optuna.load_study(study_name="quick", storage="sqlite:///runs/fmnist-search.db")
        report = build(study, Path("report"), artifacts=Path("runs/artifacts"))
        print(report.html)
    """
    import matplotlib

    matplotlib.use("Agg")  # a report is files; never a window
    from matplotlib import pyplot as plt
    from optuna import visualization as vis_plotly
    from optuna.visualization import matplotlib as vis_matplotlib

    out.mkdir(parents=True, exist_ok=True)
    report = Report(html=out / "report.html", markdown=out / "summary.md")
    sections: list[str] = []
    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    optuna_logger.setLevel(logging.ERROR)  # "study has no trials" and the like are in `skipped`
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
            # A parameter that took one value in the completed trials: matplotlib widens it.
            warnings.filterwarnings("ignore", message="Attempting to set identical")
            for plot in plots(study):
                if plot.needs:
                    report.skipped[plot.name] = plot.needs
                    continue
                try:
                    figure = plot.draw(vis_plotly)
                    axes = plot.draw(vis_matplotlib)
                except (ValueError, RuntimeError) as e:
                    report.skipped[plot.name] = str(e).splitlines()[0]
                    continue
                png = out / f"{plot.name}.png"
                fig = _figure_of(axes)
                if plot.name == "parallel_coordinate":
                    fig.set_size_inches(max(8.0, 1.2 * len(varying_params(study))), 5.5)
                fig.savefig(png, dpi=110, bbox_inches="tight")
                plt.close(fig)
                report.pngs[plot.name] = png
                sections.append(_html_section(plot, figure))
    finally:
        optuna_logger.setLevel(level)
    best = best_trial(study)
    if best is not None and artifacts is not None:
        report.best_trial_pngs = _best_trial_pngs(study, best, artifacts, out)
    summary = markdown(study, report, top=top, storage_label=storage_label)
    report.markdown.write_text(summary)
    report.html.write_text(_page(study, summary_html(study, top), report, sections))
    return report


def _figure_of(axes):
    import numpy as np

    return np.ravel(axes)[0].figure if isinstance(axes, np.ndarray) else axes.figure


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The most accurate complete trial (a Pareto study's first objective is accuracy)."""
    from search.trials import ranked

    done = ranked(study)
    return done[0] if done else None


def _best_trial_pngs(
    study: optuna.Study, trial: FrozenTrial, artifacts: Path, out: Path
) -> list[Path]:
    from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
    from optuna.artifacts.exceptions import ArtifactNotFound

    store = FileSystemArtifactStore(artifacts)
    copied = []
    for meta in get_all_artifact_meta(trial, storage=study._storage):
        if meta.filename not in (CURVES, CONFUSION):
            continue
        path = out / f"best_trial_{meta.filename}"
        path.unlink(missing_ok=True)
        try:
            download_artifact(
                artifact_store=store, file_path=str(path), artifact_id=meta.artifact_id
            )
        except ArtifactNotFound:
            continue
        copied.append(path)
    return sorted(copied)


def trial_counts(study: optuna.Study) -> str:
    count = Counter(t.state for t in study.get_trials(deepcopy=False))
    return (
        f"Trials: {count[TrialState.COMPLETE]} complete, {count[TrialState.PRUNED]} pruned, "
        f"{count[TrialState.FAIL]} failed, {count[TrialState.RUNNING]} running."
    )


def markdown(study: optuna.Study, report: Report, *, top: int, storage_label: str) -> str:
    from fmnist.config import RunConfig, dump_toml, from_dict
    from search.trials import pruning_figures

    attrs = study.user_attrs
    lines = [f"# Study `{study.study_name}`", ""]
    facts = []
    if "space" in attrs:
        facts.append(f"space `{attrs['space']}` (version {attrs.get('space_version')})")
    if "epochs" in attrs:
        facts.append(f"{attrs['epochs']} epochs per trial")
    if "split_fingerprint" in attrs:
        split = attrs["split_fingerprint"]
        facts.append(f"validation split `{split}` ({attrs.get('val_size')} images)")
    if storage_label:
        facts.append(f"storage `{storage_label}`")
    if facts:
        lines += ["; ".join(facts) + ".", ""]
    lines += [
        trial_counts(study),
        "",
        "## Top trials",
        "",
        "```text",
        top_text(study, top),
        "```",
        "",
        "## Pruning",
        "",
    ]
    f = pruning_figures(study)
    saved = 1 - f["epochs_trained"] / max(1, f["epochs_without_pruning"])
    lines += [
        "| finished trials | pruned | epochs trained | epochs without pruning | saved |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {f['trials']} | {f['pruned']} | {f['epochs_trained']} | "
        f"{f['epochs_without_pruning']} | {saved:.0%} |",
        "",
    ]
    if f.get("rejected"):
        lines += [f"{f['rejected']} configs were rejected over budget, before training.", ""]
    best = best_trial(study)
    if best is not None and "config" in best.user_attrs:
        config = from_dict(RunConfig, best.user_attrs["config"])
        lines += [f"## Best config (trial {best.number})", "", "```toml", dump_toml(config), "```"]
        lines += [""] + [f"![{p.stem}]({p.name})" for p in report.best_trial_pngs] + [""]
    lines += ["## Plots", "", "Interactive versions of all of these are in `report.html`.", ""]
    lines += [f"![{name}]({path.name})" for name, path in report.pngs.items()]
    if report.skipped:
        lines += ["", "Not drawn:", ""]
        lines += [f"- {name}: {why}" for name, why in report.skipped.items()]
    return "\n".join(lines) + "\n"


def top_text(study: optuna.Study, top: int) -> str:
    """The top-k table, the front of accuracy against costs, the confirmed ranking and the
    lockbox ledger, as ``show`` prints them."""
    from search.results.confirm import confirmed_table
    from search.results.console import front_table, top_table
    from search.study.lockbox import summary

    return "\n\n".join(
        [top_table(study, top), front_table(study), confirmed_table(study), summary(study)]
    )


def summary_html(study: optuna.Study, top: int) -> str:
    from search.trials import pruning_figures

    f = pruning_figures(study)
    return (
        f"<p>{trial_counts(study)} Pruning: "
        f"{f['epochs_trained']} epochs trained against {f['epochs_without_pruning']} "
        "without pruning.</p>\n"
        f"<pre>{html.escape(top_text(study, top))}</pre>"
    )


def _html_section(plot: Plot, figure) -> str:
    div = figure.to_html(
        full_html=False,
        include_plotlyjs=False,  # once, in the page's head
        default_height="480px",
        div_id="plot-" + re.sub(r"[^A-Za-z0-9_-]", "-", plot.name),
    )
    kind = "slice" if plot.name.startswith("slice_") else "wide"
    return (
        f'<section class="{kind}" id="{html.escape(plot.name)}"><h2>{html.escape(plot.title)}'
        f'</h2>{div}<p><a href="{html.escape(plot.name)}.png">PNG</a></p></section>'
    )


def _page(study: optuna.Study, summary: str, report: Report, sections: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    name = html.escape(study.study_name)
    images = "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{p.stem}</figcaption></figure>'
        for p in report.best_trial_pngs
    )
    best = f"<h2>Best trial</h2>{images}" if images else ""
    skipped = "".join(
        f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in report.skipped.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Study {name}: fmnist-search report</title>
<script>{get_plotlyjs()}</script>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 1400px; }}
pre {{ background: #f4f4f4; padding: 0.8em; overflow-x: auto; }}
.slices {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.slices section {{ width: 440px; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Study {name}</h1>
{summary}
{best}
{"".join(s for s in sections if 'class="wide"' in s)}
<h2>Slice plots</h2>
<div class="slices">{"".join(s for s in sections if 'class="slice"' in s)}</div>
{f"<h2>Not drawn</h2><ul>{skipped}</ul>" if skipped else ""}
</body></html>
"""
