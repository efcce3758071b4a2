"""What a search prints: one live line per trial, a top-k table at the end, and the front
table that ``show`` and ``report`` give."""

from __future__ import annotations

import sys
import time

import optuna
from optuna.trial import TrialState

from search.study.objectives import ACCURACY, costs_of, front, is_pareto
from search.text import fmt
from search.trials import epoch_accuracies, finished_count, ranked


def _params(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


class TrialLine:
    """One line per trial; on a terminal it is rewritten in place after every epoch."""

    def __init__(
        self, number: int, epochs: int, params: int | None, prefix: str = "", stream=None
    ) -> None:
        self.number, self.epochs, self.params, self.prefix = number, epochs, params, prefix
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.start = time.perf_counter()
        self.epoch, self.acc = 0, None

    def _text(self, state: str) -> str:
        acc = "  -   " if self.acc is None else f"{self.acc:.4f}"
        return (
            f"{self.prefix}trial {self.number:4d}  params {_params(self.params):>7}  "
            f"epoch {self.epoch:3d}/{self.epochs:<3d}  val_acc {acc}  {state:<8}  "
            f"{time.perf_counter() - self.start:7.1f}s"
        )

    def update(self, epoch: int, acc: float) -> None:
        self.epoch, self.acc = epoch, acc
        if self.live:
            self.stream.write("\r" + self._text("RUNNING"))
            self.stream.flush()

    def finish(self, state: str, reason: str = "") -> None:
        line = self._text(state) + (f"  {reason}" if reason else "")
        self.stream.write(("\r" if self.live else "") + line + "\n")
        self.stream.flush()


def top_table(study: optuna.Study, k: int = 5) -> str:
    rows = ranked(study)[:k]
    if not rows:
        return "no completed trials yet"
    out = [
        f"top {len(rows)} of study {study.study_name!r} (validation accuracy, last epoch):",
        f"{'trial':>6} {'val_acc':>8} {'best':>8} {'params':>8} {'epochs':>6}  sampled values",
    ]
    for t in rows:
        best = t.user_attrs.get("best_val_acc")
        shown = ", ".join(f"{k.split('.', 1)[-1]}={fmt(v)}" for k, v in t.params.items())
        shown = shown if len(shown) <= 90 else shown[:87] + "..."
        out.append(
            f"{t.number:6d} {t.values[0]:8.4f} {best if best is None else f'{best:8.4f}'} "
            f"{_params(t.user_attrs.get('params')):>8} "
            f"{len(epoch_accuracies(t)):6d}  {shown}"
        )
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
    best validation accuracy so far and the time left at this run's pace. A tqdm bar where a
    terminal is attached; a plain line per finished trial otherwise."""

    def __init__(
        self, study: optuna.Study, target: int, deadline: float | None = None, stream=None
    ) -> None:
        self.study, self.target, self.deadline = study, target, deadline
        self.stream = stream or sys.stderr
        self.start, self.done_at_start = time.monotonic(), self._done()
        self.bar, self.shown = None, self.done_at_start
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=target, initial=self.done_at_start, desc="trials", file=self.stream
            )

    def _done(self) -> int:
        return finished_count(self.study)

    def update(self, _trial=None) -> None:
        done = self._done()
        if done == self.shown:
            return
        self.shown = done
        best = max((t.values[0] for t in ranked(self.study)[:1]), default=None)
        ran, elapsed = done - self.done_at_start, time.monotonic() - self.start
        left = elapsed / ran * (self.target - done) if ran > 0 else None
        if self.deadline is not None:  # the timeout ends the study first
            until = max(0.0, self.deadline - time.monotonic())
            left = until if left is None else min(left, until)
        best_text = "-" if best is None else f"{best:.4f}"
        left_text = "?" if left is None else f"{left / 60:.1f} min"
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
