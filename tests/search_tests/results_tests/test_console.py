"""The study-level progress line: its time left never runs past the study's timeout, it
appears after the first epoch, and a long epoch gets a line of its own."""

from __future__ import annotations

import io
import re
import time

import optuna

from search.results.console import StudyProgress, TrialLine

UNIT_S = {"s": 1, "min": 60, "h": 3600, "days": 86400}


def seconds_left(line: str) -> float:
    number, unit = re.search(r"about ([\d.]+) (s|min|h|days) left", line).groups()
    return float(number) * UNIT_S[unit]


def minutes_left(progress: StudyProgress, study: optuna.Study, value: float) -> float:
    """Finish one trial an hour into the run and read the printed estimate."""
    progress.start = time.monotonic() - 3600
    study.add_trial(optuna.trial.create_trial(value=value))
    progress.update()
    return seconds_left(progress.stream.getvalue().splitlines()[-1]) / 60


def test_time_left_is_capped_by_the_timeout() -> None:
    study = optuna.create_study(direction="maximize")
    # One trial an hour with 999 to go is weeks at this pace; the timeout ends it in 60 s.
    capped = StudyProgress(study, 1000, deadline=time.monotonic() + 60, stream=io.StringIO())
    assert 0.9 <= minutes_left(capped, study, 0.5) <= 1.0

    unbounded = StudyProgress(study, 1000, stream=io.StringIO())
    assert minutes_left(unbounded, study, 0.6) > 60 * 24 * 7


def test_the_study_line_appears_after_the_first_epoch_and_is_refined() -> None:
    study = optuna.create_study(direction="maximize")
    stream = io.StringIO()
    progress = StudyProgress(study, 10, stream=stream, epochs_per_trial=3.0)
    assert stream.getvalue() == ""
    progress.epoch(60.0)  # no trial has finished: 10 trials x 3 epochs - 1 done, at 60 s
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("study ") and "0/10 trials finished" in line
    assert seconds_left(line) == 29 * 60
    progress.epoch(30.0)  # the second epoch is quicker: 28 epochs at 45 s
    assert progress.left(0) == 28 * 45
    assert len(stream.getvalue().splitlines()) == 1  # plain output: one line, not per epoch
    # A trial ends after its 2 epochs: the study's own pace (2 a trial) replaces the guess.
    study.add_trial(optuna.trial.create_trial(value=0.5))
    progress.update()
    assert seconds_left(stream.getvalue().splitlines()[-1]) == 9 * 2 * 45


def test_a_long_epoch_gets_a_line_of_its_own() -> None:
    heard: list[float] = []
    quiet, stream = TrialLine(3, 5, 1000, stream=io.StringIO()), io.StringIO()
    quiet.update(1, 0.5)  # a quick epoch, off a terminal: nothing until the trial ends
    assert quiet.stream.getvalue() == ""
    long = TrialLine(3, 5, 1000, stream=stream, long_epoch_s=0.0, on_epoch=heard.append)
    long.update(1, 0.51)
    long.update(2, 0.62)
    lines = stream.getvalue().splitlines()
    assert [re.sub(r"[\d.]+s$", "S", line) for line in lines] == [
        "trial    3  epoch 1/5  val_acc 0.5100  S",
        "trial    3  epoch 2/5  val_acc 0.6200  S",
    ]
    assert len(heard) == 2 and all(s >= 0 for s in heard)
