"""The plan of one ``auto`` budget, stored on the study (user attribute ``auto_plan``, beside
the ``run_plan`` of its search, by the same ``search.run.plan.write_attr``) so that a resume
reads it back instead of deciding again.

How the budget is split follows from one measurement: how well short runs rank configs as
longer ones do. After the first ``FIRST_SEARCH_SHARE`` of the budget the search's complete
trials give pairs (validation accuracy after the first epoch, after the last); their Spearman
rank correlation picks a row of ``RULES``. Where short runs rank as long ones do, more of the
budget goes to searching; where they do not (or too few trials finished to tell), more goes to
confirming the top trials at a longer fidelity, and to the final training. A row that trusts
short runs more than the last one needs the correlation to be significant: unrelated rankings
correlate as well less than ``ALPHA`` of the time (three trials ranked alike are one chance in
six, and had given a 60-minute search 55% of its budget). Whatever the search and
confirmation leave goes to the final training, whose epochs are what that time buys at the
winner's measured epoch time.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.run.plan import read_attr, write_attr
from search.trials import epoch_accuracies

PLAN = "auto_plan"  # study user attribute
PHASES = ("search", "confirm", "final", "done")
FIRST_SEARCH_SHARE = 0.30  # searched before the split is chosen: at most every rule's search
MAX_CONFIRM = 3  # top trials confirmed at most
MIN_CONFIRM = 2  # and at least: one alone decides nothing, so its time goes to the final
MIN_PAIRS = 3  # trials with both lengths needed to measure a rank correlation
ALPHA = 0.05  # the most chance a rank correlation may owe to luck and still move the split
EXACT_PAIRS = 8  # up to this many pairs, every pairing is tried (8! = 40,320); beyond, a sample


@dataclass(frozen=True)
class Split:
    """Shares of the budget (the final training takes what is left, at least ``final``) and
    the confirmation's fidelity as a multiple of the search's epochs."""

    search: float
    confirm: float
    final: float
    confirm_factor: int
    why: str
    confirm_max: int = MAX_CONFIRM  # top trials confirmed at most


# (lowest rank correlation, split), highest first; the last row also serves an unmeasured or
# not significant one.
RULES: tuple[tuple[float, Split], ...] = (
    (0.7, Split(0.55, 0.10, 0.35, 1, "short runs rank as long ones do: more search")),
    (0.3, Split(0.45, 0.20, 0.35, 2, "short runs rank fairly: confirm at twice the epochs")),
    (
        -math.inf,
        Split(0.35, 0.25, 0.40, 2, "short runs rank poorly or too few to tell: confirm longer"),
    ),
)


def split_for(rank_corr: float | None, chance: float | None) -> Split:
    """The first row whose correlation ``rank_corr`` reaches, where luck alone would reach it
    less than ``ALPHA`` of the time (``chance``); else the last, careful row."""
    if rank_corr is not None and chance is not None and chance < ALPHA:
        for low, split in RULES:
            if rank_corr >= low:
                return split
    return RULES[-1][1]


def _measurable(xs: list[float], ys: list[float]) -> bool:
    """Enough pairs (``MIN_PAIRS``), each side with a spread, to rank at all."""
    return len(xs) >= MIN_PAIRS and len(set(xs)) > 1 and len(set(ys)) > 1


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation, None for fewer than ``MIN_PAIRS`` pairs or no spread."""
    if not _measurable(xs, ys):
        return None
    from scipy.stats import spearmanr  # scipy loads only when a correlation is measured

    rho = float(spearmanr(xs, ys).statistic)
    return None if math.isnan(rho) else rho


def chance(xs: list[float], ys: list[float]) -> float | None:
    """How often unrelated rankings correlate at least as well as these pairs do: the
    one-sided p-value of Spearman's correlation under no association, exact (every pairing)
    up to ``EXACT_PAIRS`` pairs, from a seeded sample of pairings beyond. None where
    ``spearman`` measures nothing."""
    if not _measurable(xs, ys):
        return None
    from scipy.stats import pearsonr, permutation_test, rankdata  # scipy: as spearman's

    def rho(x, y, axis=-1):  # Spearman's rho is Pearson's r of the ranks
        return pearsonr(x, y, axis=axis).statistic

    result = permutation_test(
        (rankdata(xs), rankdata(ys)),
        rho,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=math.factorial(EXACT_PAIRS),
        alternative="greater",
        rng=0,
    )
    return float(result.pvalue)


def odds(luck: float | None) -> str:
    """``chance`` in words ("by chance 1 time in 6"), or that an older plan did not measure it."""
    if luck is None:
        return "its chance not measured"
    if luck < 0.001:
        return "by chance under 1 time in 1,000"
    return f"by chance 1 time in {1 / luck:,.0f}"


def short_long_pairs(study: optuna.Study) -> tuple[list[float], list[float]]:
    """(first-epoch accuracy, last-epoch accuracy) of every complete trial that trained more
    than one epoch."""
    short, long = [], []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        curve = epoch_accuracies(t)
        if len(curve) > 1:
            short.append(curve[min(curve)])
            long.append(curve[max(curve)])
    return short, long


def epoch_seconds(trial: FrozenTrial) -> float | None:
    """A trial's median epoch time as it measured it (training and validation)."""
    seconds = sorted(trial.user_attrs.get("epoch_seconds") or [])
    return seconds[len(seconds) // 2] if seconds else None


@dataclass(frozen=True)
class Plan:
    """One budget's plan: what was measured, what was decided, and the seconds each phase
    has spent so far (start-up counts as ``start``). ``phase`` is the next phase to run."""

    budget_s: float
    study: str
    search_epochs: int
    search_images: int
    probe_epoch_s: float  # a search epoch as the probe measured the preset's first recipe
    phase: str = "search"
    rank_corr: float | None = None
    rank_pairs: int = 0
    rank_chance: float | None = None  # how often luck alone would rank as alike (``chance``)
    split: Split | None = None  # chosen after FIRST_SEARCH_SHARE
    confirm_top: int = 0
    confirm_epochs: int = 0
    confirm_rank_corr: float | None = None  # search score against confirmed score, top trials
    final_epochs: int = 0  # as planned from the measured epoch time (the card: as trained)
    final_epoch_s: float = 0.0
    final_room_s: float = 0.0  # the seconds the final training was given, scoring reserved
    spent_s: dict[str, float] = field(default_factory=dict)
    created_at: str = ""

    @property
    def total_spent(self) -> float:
        return sum(self.spent_s.values())

    def spend(self, phase: str, seconds: float) -> Plan:
        spent = dict(self.spent_s)
        spent[phase] = spent.get(phase, 0.0) + seconds
        return dataclasses.replace(self, spent_s=spent)

    def share_end(self, phase: str) -> float:
        """The fraction of the budget spent when ``phase`` should end."""
        split = self.split or split_for(None, None)
        if phase == "search":
            return split.search
        if phase == "confirm":
            return split.search + split.confirm
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        split = data.get("split")
        return cls(**(data | {"split": Split(**split) if split else None}))


def stored_plan(study: optuna.Study) -> Plan | None:
    return read_attr(study, PLAN, Plan)


def store(study: optuna.Study, plan: Plan) -> Plan:
    return write_attr(study, PLAN, plan)


def new_plan(*, budget_s: float, study: str, epochs: int, images: int, probe_s: float) -> Plan:
    return Plan(
        budget_s=budget_s,
        study=study,
        search_epochs=epochs,
        search_images=images,
        probe_epoch_s=probe_s,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
