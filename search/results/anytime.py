"""Anytime curves: a study's best validation accuracy so far against the wall time since its
first trial started, read from the trials' own timestamps, so every study has one without
recording anything extra. ``report`` draws one per study; the baselines bench draws every
method's on one figure, which shows where each spent its time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import optuna
from optuna.trial import TrialState

Curve = list[tuple[float, float]]  # (seconds since the study's first trial started, best so far)


def anytime_curve(study: optuna.Study) -> Curve:
    """One point per complete trial that raised the best (a Pareto study's first value, the
    accuracy), in the order they finished; empty before the first complete trial."""
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    if not starts:
        return []
    first = min(starts)
    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.values and t.datetime_complete is not None
    ]
    curve: Curve = []
    for t in sorted(done, key=lambda t: t.datetime_complete):
        if not curve or t.values[0] > curve[-1][1]:
            curve.append(((t.datetime_complete - first).total_seconds(), t.values[0]))
    return curve


def draw_anytime(
    curves: Mapping[str, Sequence[tuple[float, float]]], path: Path, title: str
) -> Path:
    """Every curve as a step line on one figure, written as a PNG to ``path``."""
    import matplotlib  # drawn only when asked for, as the report's plots are

    matplotlib.use("Agg")  # files, never a window
    from matplotlib import pyplot as plt  # after the backend is chosen

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, curve in curves.items():
        if curve:
            xs, ys = zip(*curve, strict=True)
            ax.step(xs, ys, where="post", marker="o", markersize=3, label=label)
    ax.set_xlabel("wall time since the first trial started (s)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(title)
    if any(curves.values()):
        ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
