from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image
import optuna
import pytest
from optuna import visualization
from optuna.trial import TrialState

from search.results.console import top_table
from search.results.report import build, mark_pruned
from search.trials import ranked
from tests.testing import QuickStudy

PLOTS = [
    "optimization_history",
    "param_importances",
    "intermediate_values",
    "parallel_coordinate",
    "slice_vgg.width",  # does a wider net pay for its time?
    "slice_aug.flip_p",  # does flipping help?
    "slice_optim.lr",  # which learning rate wins?
]


@pytest.mark.slow
def test_report_writes_the_page_the_pngs_and_the_summary(
    quick_study: QuickStudy, quick_report: Path
) -> None:
    study = quick_study.load()
    for name in PLOTS:
        image = matplotlib.image.imread(quick_report / f"{name}.png")
        assert image.shape[0] > 200 and image.shape[1] > 200, name
    assert not (quick_report / "pareto_front.png").exists()  # one objective: no front
    for name in ("best_trial_learning_curves.png", "best_trial_confusion_matrix.png"):
        assert (quick_report / name).is_file()

    page = (quick_report / "report.html").read_text()
    assert "<script src=" not in page  # self-contained: plotly is inline, once
    plots = [p for p in quick_report.glob("*.png") if not p.name.startswith("best_trial_")]
    assert page.count("Plotly.newPlot(") == len(plots)
    for name in PLOTS:
        assert f'id="{name}"' in page

    summary = (quick_report / "summary.md").read_text()
    assert top_table(study, 10) in summary
    pruned = sum(t.state == TrialState.PRUNED for t in study.trials)
    assert re.search(rf"\| {len(study.trials)} \| {pruned} \| \d+ \| \d+ \| \d+% \|", summary)
    assert f"## Best config (trial {ranked(study)[0].number})" in summary
    for name in PLOTS:
        assert f"]({name}.png)" in summary


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_pruned_trials_are_marked_on_the_intermediate_values(quick_study: QuickStudy) -> None:
    study = quick_study.load()
    pruned = {t.number for t in study.trials if t.state == TrialState.PRUNED}
    assert pruned
    figure = mark_pruned(visualization.plot_intermediate_values(study), pruned, "val_acc")
    for trace in figure.data:
        number = int(re.match(r"Trial(\d+)", trace.name).group(1))
        assert trace.name.endswith("(pruned)") == (number in pruned)
        assert (trace.line.dash == "dot") == (number in pruned)
        if number in pruned:
            assert trace.marker.symbol[-1] == "x"

    axes = mark_pruned(visualization.matplotlib.plot_intermediate_values(study), pruned, "val_acc")
    labels = [line.get_label() for line in axes.get_lines() if line.get_label()[0] != "_"]
    assert sorted(labels) == sorted(
        f"Trial{t.number}" + (" (pruned)" if t.number in pruned else "")
        for t in study.trials
        if t.intermediate_values
    )
    axes.figure.clf()


def _pareto_study() -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        study.set_metric_names(["val_acc", "params"])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        width = trial.suggest_int("resnet.width", 8, 64)
        lr = trial.suggest_float("optim.lr", 1e-4, 1e-1, log=True)
        trial.set_user_attr("params", width * 1000)
        return 0.9 - abs(lr - 0.01) - 1 / width, width * 1000.0

    study.optimize(objective, n_trials=8)
    return study


def test_a_pareto_study_gets_its_front(tmp_path: Path) -> None:
    report = build(_pareto_study(), tmp_path)
    assert set(report.pngs) == {
        "optimization_history",
        "param_importances",
        "parallel_coordinate",
        "slice_optim.lr",
        "slice_resnet.width",
        "pareto_front",
    }
    assert report.skipped == {"intermediate_values": "no trial reported per-epoch values"}
    assert all(p.is_file() for p in report.pngs.values())
    assert 'id="pareto_front"' in report.html.read_text()
    assert "Pareto front of study" in report.markdown.read_text()


def test_a_study_without_completed_trials_says_what_it_cannot_draw(tmp_path: Path) -> None:
    study = optuna.create_study()
    trial = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1)})
    trial.report(0.5, 0)
    study.tell(trial, state=TrialState.PRUNED)
    report = build(study, tmp_path)
    assert set(report.pngs) == {"intermediate_values"}
    assert report.skipped["optimization_history"] == "no completed trial"
    assert report.skipped["param_importances"] == "fewer than two completed trials"
    assert "no completed trials yet" in report.markdown.read_text()
    assert "Not drawn" in report.html.read_text()


def test_report_of_an_unknown_study_is_one_line(cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="there", storage=url)
    result = cli("report", "--study", "missing", "--storage", url, "-o", tmp_path / "r")
    assert result.code == 2
    assert "no study 'missing'" in result.error and "there" in result.error
    assert not (tmp_path / "r").exists()
