"""The study-level progress line: its time left never runs past the study's timeout."""

from __future__ import annotations

import io
import re
import time

import optuna

from search.results.console import StudyProgress


def minutes_left(progress: StudyProgress, study: optuna.Study, value: float) -> float:
    """Finish one trial an hour into the run and read the printed estimate."""
    progress.start = time.monotonic() - 3600
    study.add_trial(optuna.trial.create_trial(value=value))
    progress.update()
    last = progress.stream.getvalue().splitlines()[-1]
    return float(re.search(r"about ([\d.]+) min left", last).group(1))


def test_time_left_is_capped_by_the_timeout() -> None:
    study = optuna.create_study(direction="maximize")
    # One trial an hour with 999 to go is weeks at this pace; the timeout ends it in 60 s.
    capped = StudyProgress(study, 1000, deadline=time.monotonic() + 60, stream=io.StringIO())
    assert 0.9 <= minutes_left(capped, study, 0.5) <= 1.0

    unbounded = StudyProgress(study, 1000, stream=io.StringIO())
    assert minutes_left(unbounded, study, 0.6) > 60 * 24 * 7
