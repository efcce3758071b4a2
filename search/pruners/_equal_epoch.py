"""Stopping Pareto trials early: successive halving on accuracy at equal epochs.

Optuna cannot prune a multi-objective trial (``Trial.report`` and ``Trial.should_prune`` raise),
so a Pareto study keeps each trial's validation accuracy per epoch in the ``val_acc_curve``
user attribute and applies this rule itself:

* **Rungs** are at ``min_resource * reduction_factor**k`` epochs, below the epoch budget
  (1, 3, 9 for the defaults and 15 epochs).
* At a rung a trial's **peers** are the other trials of the study (running, complete or
  stopped; not failed ones, whose retries carry their curves) that have reached the same
  epoch and cost no more on every cost objective: fewer or as many parameters, say.
* It goes on if its accuracy at that epoch is among the best ``n // reduction_factor`` of the
  ``n`` trials it is compared with (itself included), and always while it has fewer than
  ``min_peers`` peers (default ``reduction_factor - 1``).

Comparing only with no-costlier peers keeps the cheap end of the front: the smallest network
seen so far is never stopped for being less accurate than bigger ones, and a bigger one must
out-learn the smaller ones at equal epochs to earn its extra cost. The costs (parameters,
MACs, latency) are known before training, so the decision rests on the accuracy curve alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

CURVE = "val_acc_curve"  # trial user attribute: validation accuracy per epoch, from epoch 0
PEERS = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


def record_accuracy(trial: optuna.Trial, accuracy: float, epoch: int) -> None:
    """``trial.report`` for one objective; for several, the curve a Pareto rule reads."""
    if len(trial.study.directions) == 1:
        trial.report(accuracy, epoch)
        return
    curve = list(trial.user_attrs.get(CURVE, []))
    if len(curve) == epoch:  # as with report, a second value for an epoch is ignored
        trial.set_user_attr(CURVE, curve + [float(accuracy)])


class EqualEpochHalving:
    """The rule above, for a study whose cost objectives are ``costs``.

    Args:
        epochs: the study's epoch budget; no rung at or above it.
        costs: the trial user attributes compared (``params``, ``macs``, ``latency_ms``).
        min_resource: epochs at the first rung.
        reduction_factor: a trial must be in the best 1/reduction_factor of its group.
        min_peers: peers needed at a rung before a trial can be stopped there.

    Example::

        rule = EqualEpochHalving(epochs=9, costs=["params"], reduction_factor=3)
        rule.rungs  # (1, 3)
        rule.stops(7, accuracy=0.71, cost=(50_000,), epochs_done=3, trials=study.trials)
    """

    def __init__(
        self,
        *,
        epochs: int,
        costs: Sequence[str],
        min_resource: int = 1,
        reduction_factor: int = 3,
        min_peers: int | None = None,
    ) -> None:
        if not isinstance(min_resource, int) or min_resource < 1:
            raise ValueError(f"min_resource must be an integer of at least 1, got {min_resource}")
        if not isinstance(reduction_factor, int) or reduction_factor < 2:
            raise ValueError(
                f"reduction_factor must be an integer of at least 2, got {reduction_factor}"
            )
        min_peers = reduction_factor - 1 if min_peers is None else min_peers
        if not isinstance(min_peers, int) or min_peers < 1:
            raise ValueError(f"min_peers must be an integer of at least 1, got {min_peers}")
        self.costs = tuple(costs)
        self.reduction_factor, self.min_peers = reduction_factor, min_peers
        rungs, r = [], min_resource
        while r < epochs:
            rungs.append(r)
            r *= reduction_factor
        self.rungs = tuple(rungs)

    def should_stop(self, trial: optuna.Trial, epoch: int) -> bool:
        """After ``epoch`` (from 0) has been recorded on ``trial``."""
        if epoch + 1 not in self.rungs:
            return False
        attrs = trial.user_attrs
        return self.stops(
            trial.number,
            accuracy=attrs[CURVE][epoch],
            cost=tuple(attrs[c] for c in self.costs),
            epochs_done=epoch + 1,
            trials=trial.study.get_trials(deepcopy=False, states=PEERS),
        )

    def stops(
        self,
        number: int,
        *,
        accuracy: float,
        cost: Sequence[float],
        epochs_done: int,
        trials: Sequence[FrozenTrial],
    ) -> bool:
        peers = [
            curve[epochs_done - 1]
            for t in trials
            if t.number != number
            and t.state in PEERS
            and len(curve := t.user_attrs.get(CURVE, [])) >= epochs_done
            and self._no_costlier(t.user_attrs, cost)
        ]
        if len(peers) < self.min_peers:
            return False
        keep = max(1, (len(peers) + 1) // self.reduction_factor)
        bar = sorted([*peers, accuracy], reverse=True)[keep - 1]
        return accuracy < bar

    def _no_costlier(self, attrs: dict[str, Any], cost: Sequence[float]) -> bool:
        theirs = [attrs.get(c) for c in self.costs]
        return None not in theirs and all(t <= c for t, c in zip(theirs, cost, strict=True))
