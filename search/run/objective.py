"""One trial: sample a config from the space, train it with Lightning, report every epoch.

The trial's value is the validation accuracy of its last epoch (what a retrain for the same
number of epochs would get); the best epoch is kept as an attribute. In a Pareto study its
values are that accuracy and the preset's cost objectives. A config over the preset's budget
is rejected before it trains (search.study.constraints).
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning.pytorch as pl
import optuna
import torch
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from fmnist.config import RunConfig, from_dict, replace, to_dict
from fmnist.models import build_model
from fmnist.provenance import device_name, git_commit, package_versions
from fmnist.record import describe
from fmnist.train import fit
from search.pruners import EqualEpochHalving, record_accuracy
from search.results.artifacts import record_trial
from search.results.console import TrialLine
from search.run.device_faults import INFRASTRUCTURE, DeviceFault, is_device_fault
from search.run.faults import FaultInjector, planned
from search.run.outcomes import Interrupted, TrialFailed, bare, one_line
from search.run.ray_worker import NODE_ENV
from search.storage.liveness import RETRY_OF, cut_and_waiting, retry_chain
from search.storage.retry import StorageLost
from search.study import ResolvedStudy
from search.study.constraints import check, measure
from search.trials import ranked, trial_sample

TIMEOUT_REASON = "the study's timeout passed"


# Trial number -> Lightning callbacks added to that trial's Trainer (the bench's step clock).
TrialCallbacks = Callable[[int], Sequence[pl.Callback]]


def checkpoint_epochs(pruner: optuna.pruners.BasePruner, epochs: int) -> frozenset[int]:
    """The epochs (0-based) whose end writes a trial's checkpoint: a rung of a successive-
    halving pruner (Hyperband's brackets all promote at its powers), where a trial that goes
    on is worth resuming, and the last epoch; every epoch under a pruner without rungs."""
    if isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner | optuna.pruners.HyperbandPruner):
        step, factor = pruner._min_resource, pruner._reduction_factor
        if isinstance(step, int):  # "auto" learns it from the first trials: every epoch
            step *= factor ** getattr(pruner, "_min_early_stopping_rate", 0)
            rungs = set()
            while step < epochs:
                rungs.add(step)
                step *= factor
            return frozenset(rungs | {epochs - 1})
    return frozenset(range(epochs))


class EpochReporter(PyTorchLightningPruningCallback):
    """optuna-integration's pruning callback (report val_acc, prune), then the epoch's
    checkpoint when ``save_at`` holds the epoch and the trial goes on (never at the epoch the
    pruner stops it: nobody resumes that), so a killed trial's retry resumes from its last
    rung, and at the epoch a timeout cuts it (``auto`` continues the trials its first search
    share cut); plus the live console line, the epochs this attempt trained and the bytes its
    checkpoints wrote (``ckpt_bytes``). A Pareto study, which Optuna cannot
    prune, records the curve and asks ``halving`` (the equal-epoch rule of search.pruners).
    Past ``deadline`` (``time.monotonic()``, the study's timeout) it stops the trial at the
    epoch's end, pruned with its curve kept, so a search's wall time is its timeout plus at
    most one epoch, as a side-by-side with another search for the same minutes needs."""

    def __init__(
        self,
        trial: optuna.Trial,
        line: TrialLine,
        ckpt: Path,
        halving: EqualEpochHalving | None = None,
        deadline: float | None = None,
        save_at: frozenset[int] | None = None,
    ) -> None:
        super().__init__(trial, monitor="val_acc")
        self.line, self.ckpt, self.halving, self.save_at = line, ckpt, halving, save_at
        self.ckpt_bytes = 0
        self.history: list[dict[str, float]] = []  # the module's, for a pruned trial's curves
        self.deadline = deadline
        self.stopped_by_timeout = False
        self.trained_epochs: list[int] = []
        self.epoch_seconds: list[float] = []
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.trained_epochs.append(pl_module.current_epoch)
        self.history = [dict(h) for h in pl_module.history]
        self.epoch_seconds.append(time.perf_counter() - self._t0)
        self._trial.set_user_attr("trained_epochs", self.trained_epochs)
        self._trial.set_user_attr("epoch_seconds", self.epoch_seconds)
        acc = trainer.callback_metrics.get("val_acc")
        if acc is not None:
            self.line.update(pl_module.current_epoch + 1, float(acc))
        if self.halving is None:
            super().on_validation_end(trainer, pl_module)
        elif acc is not None:
            epoch = pl_module.current_epoch
            record_accuracy(self._trial, float(acc), epoch)
            if self.halving.should_stop(self._trial, epoch):
                raise optuna.TrialPruned(f"stopped at epoch {epoch} by the equal-epoch rule")
        last = pl_module.current_epoch + 1 >= (trainer.max_epochs or 0)
        cut = self.deadline is not None and time.monotonic() >= self.deadline and not last
        if cut or self.save_at is None or pl_module.current_epoch in self.save_at:
            tmp = self.ckpt.with_suffix(".tmp")
            trainer.save_checkpoint(tmp)
            self.ckpt_bytes += tmp.stat().st_size
            os.replace(tmp, self.ckpt)  # atomic: a kill leaves the old or the new, never half
            self._trial.set_user_attr("ckpt_bytes", self.ckpt_bytes)
        if cut:
            self._trial.set_user_attr("stopped_by", "timeout")
            self.stopped_by_timeout = True
            raise optuna.TrialPruned(TIMEOUT_REASON)


class Objective:
    def __init__(
        self,
        study: ResolvedStudy,
        *,
        data_dir,
        device: str,
        out_dir: Path,
        study_name: str,
        split_fingerprint: str,
        prefix: str = "",
        artifacts: Path | None = None,
        storage: str | None = None,
        trial_callbacks: TrialCallbacks | None = None,
        deadline: float | None = None,
        on_epoch: Callable[[float], None] | None = None,
        keep_checkpoints: int = 3,
    ) -> None:
        self.study = study
        self.on_epoch = on_epoch  # hears each trained epoch's seconds (the study's progress)
        self.keep_checkpoints = keep_checkpoints
        self.deadline = deadline  # time.monotonic() past which a running trial stops
        self.trial_callbacks = trial_callbacks
        # Stored on every trial before it trains, so pruned and failed trials carry it too.
        self.fingerprint = split_fingerprint
        self.data_dir, self.device = data_dir, device
        self.out_dir, self.study_name, self.prefix = out_dir, study_name, prefix
        self.artifacts = artifacts  # the artifact store's folder; None uploads nothing
        self.storage = storage  # the study's storage URL, named by each trial's config file

    def config_for(self, trial: optuna.Trial) -> RunConfig:
        study = self.study
        if any(kind == "sample" for kind, _ in planned(trial.number)):
            raise ValueError("injected: the sampler rejected a value (FMNIST_SEARCH_FAULTS)")
        config = study.space.build(trial_sample(trial, study.dims, study.preset.fixed), study.base)
        origin = self._retried(trial)
        if origin is not None and "config" in origin.user_attrs:
            return from_dict(RunConfig, origin.user_attrs["config"])  # same seed, same run
        return replace(config, seed=study.base.seed + trial.number)

    def _retried(self, trial: optuna.Trial) -> optuna.trial.FrozenTrial | None:
        number = trial.user_attrs.get(RETRY_OF)
        if number is None:
            return None
        return trial.study.get_trials(deepcopy=False)[number]

    def drop_checkpoints(self, study: optuna.Study) -> list[int]:
        """Delete the checkpoints of finished trials outside the study's ``keep_checkpoints``
        most accurate (pruned ones too, but for one a timeout cut and nothing has continued
        yet: ``auto`` continues those); a failed trial's stays for its retry. Every worker
        calls it after each trial, so the last call sees the final ranking."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        keep = {t.number for t in ranked(study)[: self.keep_checkpoints]}
        keep |= {t.number for t in cut_and_waiting(finished)}  # a queued continuation needs it
        dropped = []
        for t in finished:
            path = self.ckpt_path(t.number)
            if t.number not in keep and path.is_file():
                path.unlink(missing_ok=True)
                dropped.append(t.number)
        return dropped

    def ckpt_path(self, number: int) -> Path:
        return self.out_dir / "ckpt" / self.study_name / f"trial-{number:04d}" / "last.ckpt"

    def resume_point(self, trial: optuna.Trial) -> Path | None:
        """The newest checkpoint along the retry chain; its epochs are reported on ``trial``
        as they were, so the pruner sees the whole curve and no epoch is trained twice."""
        frozen = trial.study._storage.get_trial(trial._trial_id)
        for number in retry_chain(trial.study, frozen):
            path = self.ckpt_path(number)
            if path.is_file():
                history = torch.load(path, map_location="cpu", weights_only=False)["history"]
                for record in history:
                    record_accuracy(trial, record["val_acc"], record["epoch"])
                trial.set_user_attr("resumed_from", {"trial": number, "epochs_done": len(history)})
                return path
        return None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self._fit_done: float | None = None
        try:
            value, ended = self._run(trial), None
        except (optuna.TrialPruned, TrialFailed, Interrupted, DeviceFault) as e:
            ended = bare(e)
        except StorageLost:
            raise  # the worker stops; the janitor retries its trial
        except Exception as e:  # before training: a value the sampler rejects, a bad config
            ended = TrialFailed(one_line(e))
            trial.set_user_attr("fail_reason", str(ended))
            TrialLine(trial.number, self.study.preset.epochs, None, self.prefix).finish(
                "FAIL", str(ended)
            )
        # The exception caught above held the trial's frames (model, optimizer, Trainer,
        # batches) through its traceback; it is gone now, so the collection frees all of it,
        # on the device too. What survives is the process's own (data on the device,
        # imports): frozen, later collections skip it (0.3 s a trial otherwise).
        gc.collect()
        gc.freeze()
        if torch.cuda.is_available():
            # After a device fault these raise again: the fault is what must surface.
            with contextlib.suppress(RuntimeError):
                torch.cuda.empty_cache()
                trial.set_user_attr("cuda_bytes_after", torch.cuda.memory_allocated())
        trial.set_user_attr("max_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if self._fit_done is not None:  # what a trial costs after training: artifacts, GC
            trial.set_user_attr("post_fit_seconds", time.perf_counter() - self._fit_done)
        if ended is not None:
            raise ended
        return value

    def _run(self, trial: optuna.Trial) -> float | list[float]:
        config = self.config_for(trial)
        model = build_model(config.model)
        measures = measure(model, latency=self.study.needs_latency)
        params = int(measures["params"])
        log_version = f"trial-{trial.number:04d}"
        for key, value in {
            "config": to_dict(config),
            "params": params,
            "macs": measures["macs"],
            "seed": config.seed,
            "split_fingerprint": self.fingerprint,
            "device": device_name(self.device),
            "node": os.environ.get(NODE_ENV) or socket.gethostname(),
            "threads": torch.get_num_threads(),
            "packages": package_versions(),
            "git_commit": git_commit(),
            "log_dir": str(self.out_dir / "tb" / self.study_name / log_version),
        }.items():
            trial.set_user_attr(key, value)
        del model
        if "latency_ms" in measures:
            trial.set_user_attr("latency_ms", measures["latency_ms"])
        if reason := check(trial, self.study.constraints, measures):  # before any training
            TrialLine(trial.number, config.epochs, params, self.prefix).finish("REJECTED", reason)
            raise optuna.TrialPruned(f"over budget: {reason}")
        line = TrialLine(trial.number, config.epochs, params, self.prefix, on_epoch=self.on_epoch)
        ckpt = self.ckpt_path(trial.number)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        save_at = checkpoint_epochs(self.study.pruning.optuna, config.epochs)
        reporter = EpochReporter(trial, line, ckpt, self.study.pruning.rule, self.deadline, save_at)
        # Extra callbacks go first, so a pruning callback that raises cannot skip them.
        extra = self.trial_callbacks(trial.number) if self.trial_callbacks else []
        callbacks = [*extra, reporter]
        if faults := planned(trial.number):
            callbacks.append(FaultInjector(faults))

        def record() -> None:  # what the trial has when it ends early: its curves so far
            record_trial(
                trial,
                self.artifacts,
                self.storage,
                config,
                ckpt=ckpt,
                history=reporter.history,
                data_dir=self.data_dir,
            )

        try:
            resume = self.resume_point(trial)
            result = fit(
                config,
                data_dir=self.data_dir,
                device=self.device,
                callbacks=callbacks,
                log_dir=self.out_dir / "tb",
                log_name=self.study_name,
                log_version=log_version,
                ckpt_path=resume,
            )
            self._fit_done = time.perf_counter()
        except optuna.TrialPruned:
            record()
            line.finish("PRUNED", TIMEOUT_REASON if reporter.stopped_by_timeout else "")
            raise
        except Interrupted as e:
            trial.set_user_attr("fail_reason", str(e))
            line.finish("FAIL", str(e))
            raise
        except Exception as e:  # a diverging loss, out-of-memory, a bad config, the device
            reason = one_line(e)
            trial.set_user_attr("fail_reason", reason)
            if is_device_fault(e):  # no artifacts: the device cannot be trusted to make them
                trial.set_user_attr("failure", INFRASTRUCTURE)
                line.finish("FAIL", f"{INFRASTRUCTURE}: {reason}")
                raise DeviceFault(f"the device failed under trial {trial.number}: {reason}") from e
            record()
            line.finish("FAIL", reason)
            raise TrialFailed(reason) from e
        info = describe(result)
        for key in ("best_val_acc", "best_epoch", "split_fingerprint", "train_images", "precision"):
            trial.set_user_attr(key, info[key])
        record_trial(
            trial, self.artifacts, self.storage, config, result=result, data_dir=self.data_dir
        )
        line.finish("COMPLETE")
        if self.study.is_pareto:
            return [result.val_acc, *(float(measures[c]) for c in self.study.costs)]
        return result.val_acc
