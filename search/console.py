"""What a search prints: one live line per trial, a top-k table at the end, and the pruning
figures that ``show`` and ``report`` give."""

from __future__ import annotations

import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.constraints import trained
from search.pareto_pruning import epoch_accuracies

STATE = {
    TrialState.COMPLETE: "COMPLETE",
    TrialState.PRUNED: "PRUNED",
    TrialState.FAIL: "FAIL",
    TrialState.RUNNING: "RUNNING",
    TrialState.WAITING: "WAITING",
}


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


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, most accurate first (a Pareto study's first value is the accuracy)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return sorted(done, key=lambda t: t.values[0], reverse=True)


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
        shown = ", ".join(f"{k.split('.', 1)[-1]}={_fmt(v)}" for k, v in t.params.items())
        shown = shown if len(shown) <= 90 else shown[:87] + "..."
        out.append(
            f"{t.number:6d} {t.values[0]:8.4f} {best if best is None else f'{best:8.4f}'} "
            f"{_params(t.user_attrs.get('params')):>8} "
            f"{len(epoch_accuracies(t)):6d}  {shown}"
        )
    return "\n".join(out)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def pruning_figures(study: optuna.Study) -> dict[str, int]:
    """Epochs trained against the epochs the same trials would have trained unpruned; configs
    rejected over budget (never trained) are counted apart."""
    budget = int(study.user_attrs.get("epochs", 0))
    every = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    finished = trained(every)
    return {
        "trials": len(finished),
        "pruned": sum(t.state == TrialState.PRUNED for t in finished),
        "epochs_trained": sum(len(epoch_accuracies(t)) for t in finished),
        "epochs_without_pruning": budget * len(finished),
        "rejected": len(every) - len(finished),
    }
