"""Failpoints for the fault-injection tests, read from ``FMNIST_SEARCH_FAULTS``.

A comma-separated list of ``KIND@TRIAL[:EPOCH]``: ``oom@3`` raises an out-of-memory error in
trial 3's first step, ``nan@5`` poisons trial 5's weights so its loss diverges for real,
``kill@2:1`` SIGKILLs the worker after trial 2's epoch 1 is validated and checkpointed,
``error@4`` raises a RuntimeError, ``cuda@4`` a CUDA error that is not out-of-memory (an
illegal memory access: the device's fault, not the trial's), ``stall@2`` holds trial 2 in
its first step for up to ``STALL_S`` seconds (so a test's signal surely lands inside a
trial), ``slow@0`` holds trial 0's first step for ``SLOW_S`` seconds (so a short
``--timeout`` surely passes inside it), ``sample@1`` raises a ValueError while trial 1's config
is sampled, before anything trains (as a sampler that rejects a value does).
``*`` for TRIAL means every trial (``stall@*:1``: every trial this process runs stalls in
epoch 1; set on one Ray node, it holds that node's trials while a test kills the node).
Unset, nothing is injected.
"""

from __future__ import annotations

import os
import signal
import time

import lightning.pytorch as pl
import torch

ENV = "FMNIST_SEARCH_FAULTS"
STALL_S = 120.0
SLOW_S = 3.0


def planned(trial_number: int) -> list[tuple[str, int]]:
    out = []
    for item in filter(None, os.environ.get(ENV, "").split(",")):
        kind, _, where = item.partition("@")
        number, _, epoch = where.partition(":")
        if number == "*" or int(number) == trial_number:
            out.append((kind, int(epoch or 0)))
    return out


class FaultInjector(pl.Callback):
    def __init__(self, faults: list[tuple[str, int]]) -> None:
        self.faults = faults

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        for kind, epoch in self.faults:
            if trainer.current_epoch != epoch or batch_idx != 0:
                continue
            if kind == "oom":
                raise torch.OutOfMemoryError("injected out-of-memory (FMNIST_SEARCH_FAULTS)")
            if kind == "error":
                raise RuntimeError("injected error (FMNIST_SEARCH_FAULTS)")
            if kind == "cuda":
                raise getattr(torch, "AcceleratorError", RuntimeError)(
                    "CUDA error: an illegal memory access was encountered "
                    "(injected, FMNIST_SEARCH_FAULTS)"
                )
            if kind == "stall":
                time.sleep(STALL_S)  # a signal handler's exception ends the sleep early
            if kind == "slow":
                time.sleep(SLOW_S)
            if kind == "nan":
                with torch.no_grad():
                    for p in pl_module.parameters():
                        p.fill_(float("nan"))

    def on_validation_end(self, trainer, pl_module) -> None:
        for kind, epoch in self.faults:
            if kind == "kill" and trainer.current_epoch == epoch:
                os.kill(os.getpid(), signal.SIGKILL)
