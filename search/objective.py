"""One trial: sample a config from the space, train it with Lightning, report every epoch.

The trial's value is the validation accuracy of its last epoch (what a retrain for the same
number of epochs would get); the best epoch is kept as an attribute.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
from optuna_integration import PyTorchLightningPruningCallback

from fmnist.config import RunConfig, replace, to_dict
from fmnist.models import build_model, count_macs, count_params
from fmnist.provenance import device_name, git_commit, package_versions
from fmnist.record import describe
from fmnist.train import fit
from search import preset as presets
from search.console import TrialLine
from spaces.dims import Categorical, Float, Int


class TrialFailed(Exception):
    """A trial that ended in error; its reason is stored on the trial as ``fail_reason``."""


class Interrupted(Exception):
    """SIGINT/SIGTERM during a search. An ``Exception`` on purpose: Lightning turns a
    KeyboardInterrupt into ``sys.exit(1)``, which Optuna would let leave the trial RUNNING."""


def trial_sample(trial: optuna.Trial, dims: dict[str, Any], fixed: dict[str, Any]):
    """The ``Sample`` a space's ``build`` calls, backed by Optuna's suggest API."""

    def sample(name: str):
        if name in fixed:
            return fixed[name]
        d = dims[name]
        if isinstance(d, Categorical):
            return trial.suggest_categorical(name, list(d.choices))
        if isinstance(d, Int):
            return trial.suggest_int(name, d.low, d.high, log=d.log)
        if isinstance(d, Float):
            return trial.suggest_float(name, d.low, d.high, log=d.log)
        raise TypeError(f"unknown dimension {d!r}")

    return sample


class EpochReporter(PyTorchLightningPruningCallback):
    """optuna-integration's pruning callback (report val_acc, prune), plus the live console
    line and per-epoch timings stored on the trial."""

    def __init__(self, trial: optuna.Trial, line: TrialLine) -> None:
        super().__init__(trial, monitor="val_acc")
        self.line = line
        self.epoch_seconds: list[float] = []
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.epoch_seconds.append(time.perf_counter() - self._t0)
        self._trial.set_user_attr("epoch_seconds", self.epoch_seconds)
        acc = trainer.callback_metrics.get("val_acc")
        if acc is not None:
            self.line.update(pl_module.current_epoch + 1, float(acc))
        super().on_validation_end(trainer, pl_module)


class Objective:
    def __init__(
        self,
        preset: presets.StudyPreset,
        *,
        data_dir,
        device: str,
        out_dir: Path,
        study_name: str,
        prefix: str = "",
    ) -> None:
        self.preset = preset
        self.space = presets.space_of(preset)
        self.dims = presets.dims(preset)
        self.base = presets.base_config(preset)
        self.data_dir, self.device = data_dir, device
        self.out_dir, self.study_name, self.prefix = out_dir, study_name, prefix

    def config_for(self, trial: optuna.Trial) -> RunConfig:
        config = self.space.build(trial_sample(trial, self.dims, self.preset.fixed), self.base)
        return replace(config, seed=self.base.seed + trial.number)

    def __call__(self, trial: optuna.Trial) -> float:
        config = self.config_for(trial)
        model = build_model(config.model)
        params = count_params(model)
        log_version = f"trial-{trial.number:04d}"
        for key, value in {
            "config": to_dict(config),
            "params": params,
            "macs": count_macs(model),
            "seed": config.seed,
            "device": device_name(self.device),
            "packages": package_versions(),
            "git_commit": git_commit(),
            "log_dir": str(self.out_dir / "tb" / self.study_name / log_version),
        }.items():
            trial.set_user_attr(key, value)
        del model
        line = TrialLine(trial.number, config.epochs, params, self.prefix)
        reporter = EpochReporter(trial, line)
        try:
            result = fit(
                config,
                data_dir=self.data_dir,
                device=self.device,
                callbacks=[reporter],
                log_dir=self.out_dir / "tb",
                log_name=self.study_name,
                log_version=log_version,
            )
        except optuna.TrialPruned:
            line.finish("PRUNED")
            raise
        except Interrupted as e:
            trial.set_user_attr("fail_reason", str(e))
            line.finish("FAIL", str(e))
            raise
        except Exception as e:  # a diverging loss, out-of-memory, a bad config
            reason = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            trial.set_user_attr("fail_reason", reason)
            line.finish("FAIL", reason)
            raise TrialFailed(reason) from e
        info = describe(result)
        for key in ("best_val_acc", "best_epoch", "split_fingerprint", "train_images", "precision"):
            trial.set_user_attr(key, info[key])
        line.finish("COMPLETE")
        return result.val_acc
