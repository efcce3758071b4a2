"""What a search prints: one live line per trial, a top-k table at the end, and the front
table that ``show`` and ``report`` give."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from search.results.varied import pairs, split_params, wrap
from search.study.objectives import ACCURACY, costs_of, front, is_pareto
from search.text import duration
from search.trials import epoch_accuracies, finished_count, ranked


def _params(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


# An epoch longer than this gets a line of its own when no terminal shows the live line.
LONG_EPOCH_S = 20.0


class TrialLine:
    """One line per trial; on a terminal it is rewritten in place after every epoch.
    Elsewhere (a log file, a pipe) an epoch longer than ``long_epoch_s`` (default
    ``LONG_EPOCH_S``) gets a line of its own, so a long trial shows it is moving.
    ``on_epoch`` hears each epoch's seconds (the study's progress line)."""

    def __init__(
        self,
        number: int,
        epochs: int,
        params: int | None,
        prefix: str = "",
        stream=None,
        *,
        long_epoch_s: float | None = None,
        on_epoch: Callable[[float], None] | None = None,
    ) -> None:
        self.number, self.epochs, self.params, self.prefix = number, epochs, params, prefix
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.long_epoch_s = LONG_EPOCH_S if long_epoch_s is None else long_epoch_s
        self.on_epoch = on_epoch
        self.start = self.last = time.perf_counter()
        self.epoch, self.acc = 0, None

    def _text(self, state: str) -> str:
        acc = "  -   " if self.acc is None else f"{self.acc:.4f}"
        return (
            f"{self.prefix}trial {self.number:4d}  params {_params(self.params):>7}  "
            f"epoch {self.epoch:3d}/{self.epochs:<3d}  val_acc {acc}  {state:<8}  "
            f"{time.perf_counter() - self.start:7.1f}s"
        )

    def update(self, epoch: int, acc: float) -> None:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        self.epoch, self.acc = epoch, acc
        if self.live:
            self.stream.write("\r" + self._text("RUNNING"))
            self.stream.flush()
        elif seconds > self.long_epoch_s:
            self.stream.write(
                f"{self.prefix}trial {self.number:4d}  epoch {epoch}/{self.epochs}  "
                f"val_acc {acc:.4f}  {seconds:.1f}s\n"
            )
            self.stream.flush()
        if self.on_epoch is not None:
            self.on_epoch(seconds)

    def finish(self, state: str, reason: str = "") -> None:
        line = self._text(state) + (f"  {reason}" if reason else "")
        self.stream.write(("\r" if self.live else "") + line + "\n")
        self.stream.flush()


VALUES_WIDTH = 60  # the varied-values column wraps between whole values past this


def top_cells(t: optuna.trial.FrozenTrial) -> list[str]:
    """A top trial's fixed cells: trial, last and best validation accuracy, params, epochs."""
    best = t.user_attrs.get("best_val_acc")
    return [
        str(t.number),
        f"{t.values[0]:.4f}",
        "-" if best is None else f"{best:.4f}",
        _params(t.user_attrs.get("params")),
        str(len(epoch_accuracies(t))),
    ]


TOP_HEADER = ["trial", "val_acc", "best", "params", "epochs"]


def top_table(study: optuna.Study, k: int = 5) -> str:
    """The best ``k`` trials; the parameters that differ between them first, each value
    whole (wrapped between values), then the ones they share, named once."""
    rows = ranked(study)[:k]
    if not rows:
        return "no completed trials yet"
    varying, constant = split_params(rows)
    widths = [6, 8, 8, 8, 6]
    head = " ".join(h.rjust(w) for h, w in zip(TOP_HEADER, widths, strict=True))
    out = [
        f"top {len(rows)} of study {study.study_name!r} (validation accuracy, last epoch):",
        f"{head}  {'values that differ' if len(rows) > 1 else 'sampled values'}",
    ]
    indent = " " * (len(head) + 2)
    for t in rows:
        cells = " ".join(c.rjust(w) for c, w in zip(top_cells(t), widths, strict=True))
        lines = wrap(pairs(t.params, varying), VALUES_WIDTH)
        out.append(f"{cells}  {lines[0]}")
        out += [indent + line for line in lines[1:]]
    if constant:
        first = f"same in all {len(rows)}: "
        shared = wrap(pairs(constant, list(constant)), len(indent) + VALUES_WIDTH - len(first))
        out.append(first + shared[0])
        out += ["  " + line for line in shared[1:]]
    return "\n".join(out)


def front_table(study: optuna.Study) -> str:
    trials = front(study)
    costs = costs_of(study)
    kind = "Pareto front" if is_pareto(study) else "accuracy against parameters"
    title = f"{kind} of study {study.study_name!r} ({ACCURACY} max, {', '.join(costs)} min)"
    if not trials:
        return f"{title}: no complete feasible trial yet"
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out = [
        f"{title}: {len(trials)} of {complete} complete trials, cheapest first:",
        f"{'trial':>6} {'val_acc':>8} {'params':>10} {'MACs':>12} {'latency_ms':>10} {'epochs':>6}",
    ]
    for t in trials:
        a = t.user_attrs
        latency = f"{a['latency_ms']:10.3f}" if "latency_ms" in a else f"{'-':>10}"
        out.append(
            f"{t.number:6d} {t.values[0]:8.4f} {a.get('params', 0):>10,} "
            f"{a.get('macs', 0):>12,} {latency} {len(epoch_accuracies(t)):6d}"
        )
    return "\n".join(out)


class StudyProgress:
    """Study-level progress beside the per-trial lines: trials finished of the target, the
    best validation accuracy so far and the time left. A tqdm bar where a terminal is
    attached; a plain line after the first epoch and after each finished trial otherwise.

    The time left counts epochs: the trials still to run, at the epochs a trial of this run
    has trained on average (before any finished, the start's ``estimate``: the budget times
    the pruner's typical share), at the mean epoch seconds so far. Without an epoch yet it
    is the pace of finished trials. A timeout caps it."""

    def __init__(
        self,
        study: optuna.Study,
        target: int,
        deadline: float | None = None,
        stream=None,
        *,
        epochs_per_trial: float | None = None,
    ) -> None:
        self.study, self.target, self.deadline = study, target, deadline
        self.epochs_per_trial = epochs_per_trial  # expected, before a trial of this run ends
        self.stream = stream or sys.stderr
        self.start, self.done_at_start = time.monotonic(), self._done()
        self.bar, self.shown = None, self.done_at_start
        self.epoch_seconds: list[float] = []
        self.epochs_this_trial = 0
        self.epochs_finished_trials = 0  # epochs of the trials of this run that ended
        if self.stream.isatty():
            self.bar = tqdm(
                total=target, initial=self.done_at_start, desc="trials", file=self.stream
            )

    def _done(self) -> int:
        return finished_count(self.study)

    def epoch(self, seconds: float) -> None:
        """An epoch of the running trial ended after ``seconds``."""
        self.epoch_seconds.append(seconds)
        self.epochs_this_trial += 1
        if len(self.epoch_seconds) == 1 or self.bar is not None:
            self._show(self._done())

    def update(self, _trial=None) -> None:
        """A trial ended (whatever its state)."""
        self.epochs_finished_trials += self.epochs_this_trial
        self.epochs_this_trial = 0
        done = self._done()
        if done == self.shown:
            return
        self.shown = done
        self._show(done)

    def left(self, done: int) -> float | None:
        ran, elapsed = done - self.done_at_start, time.monotonic() - self.start
        per_trial = (
            self.epochs_finished_trials / ran
            if ran > 0 and self.epochs_finished_trials
            else self.epochs_per_trial
        )
        left = None
        if self.epoch_seconds and per_trial is not None:
            epochs = max(0.0, (self.target - done) * per_trial - self.epochs_this_trial)
            left = epochs * sum(self.epoch_seconds) / len(self.epoch_seconds)
        elif ran > 0:
            left = elapsed / ran * (self.target - done)
        if self.deadline is not None:  # the timeout ends the study first
            until = max(0.0, self.deadline - time.monotonic())
            left = until if left is None else min(left, until)
        return left

    def _show(self, done: int) -> None:
        best = max((t.values[0] for t in ranked(self.study)[:1]), default=None)
        left = self.left(done)
        best_text = "-" if best is None else f"{best:.4f}"
        left_text = "?" if left is None else duration(left)
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(f"best val_acc {best_text}, about {left_text} left")
            return
        print(
            f"study {self.study.study_name!r}: {done}/{self.target} trials finished, best "
            f"val_acc {best_text}, about {left_text} left",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
