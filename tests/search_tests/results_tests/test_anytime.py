import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.results.anytime import anytime_curve, draw_anytime
from search.trials import ranked

T0 = datetime.datetime(2026, 1, 1)


def finished(value: float | None, end_s: float) -> FrozenTrial:
    """A trial that started 5 s before ``end_s`` and ended then; pruned without a value."""
    return FrozenTrial(
        number=0,
        trial_id=0,
        state=TrialState.COMPLETE if value is not None else TrialState.PRUNED,
        value=value,
        datetime_start=T0 + datetime.timedelta(seconds=end_s - 5),
        datetime_complete=T0 + datetime.timedelta(seconds=end_s),
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
    )


def test_curve_is_monotone_and_ends_at_the_best(tmp_path) -> None:
    study = optuna.create_study(direction="maximize")
    for value, end in [(0.80, 10), (0.70, 20), (0.85, 30), (None, 35), (0.83, 40), (0.90, 55)]:
        study.add_trial(finished(value, end))
    curve = anytime_curve(study)
    ys = [y for _, y in curve]
    assert ys == sorted(ys)
    assert curve[-1][1] == ranked(study)[0].value == 0.90
    assert [x for x, _ in curve] == [5.0, 25.0, 50.0]  # from the first trial's start
    png = draw_anytime({"study": curve}, tmp_path / "anytime.png", "t")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_no_complete_trial_gives_an_empty_curve() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(finished(None, 10))
    assert anytime_curve(study) == []
