"""Create or resume a study and run trials until it holds ``n_trials`` finished ones.

``n_trials`` is the total the study should reach (COMPLETE + PRUNED), not a number to add:
rerunning the same command after an interruption trains only what is missing.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from fmnist.data import load_train
from fmnist.split import make_split
from fmnist.train import resolve_device
from search import pareto
from search import preset as presets
from search.artifacts import artifacts_dir
from search.constraints import trained
from search.errors import SearchError
from search.objective import Interrupted, Objective, TrialCallbacks
from search.samplers import make_sampler
from search.storage import DEFAULT_URL, StorageLost, open_storage, safe_url
from search.worker import MAX_FAILS_IN_A_ROW, signals_interrupt, work


@dataclass(frozen=True)
class RunOptions:
    study: str
    n_trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    seed: int | None = None
    data_dir: str | None = None
    device: str = "auto"
    out_dir: str = "runs"
    workers: int = 1
    gpus: tuple[int, ...] = ()
    workers_per_gpu: int = 1
    worker_index: int | None = None  # set in a worker process started by `--workers K`
    grace_s: float = 30.0
    storage_retry_s: float = 120.0  # a worker rides out a storage restart this long, then stops
    artifacts: str | None = None  # artifact store folder (default: beside the storage)
    trial_callbacks: TrialCallbacks | None = None  # in-process runs only (not for --workers)


def storage_url(preset: presets.StudyPreset, opts: RunOptions) -> str:
    return opts.storage or preset.storage or DEFAULT_URL


def study_attrs(preset: presets.StudyPreset, data_dir) -> dict[str, object]:
    """What a study is bound to: resuming with any of these changed would mix results."""
    _, labels = load_train(data_dir)
    split = make_split(labels, preset.val_size, preset.split_seed)
    space = presets.space_of(preset)
    return {
        "split_fingerprint": split.fingerprint,
        "space": space.name,
        "space_version": space.version,
        "val_size": preset.val_size,
        "split_seed": preset.split_seed,
        "objectives": list(preset.objectives),
        "constraints": preset.constraints.limits(),
    }


def open_study(preset: presets.StudyPreset, opts: RunOptions) -> optuna.Study:
    url = storage_url(preset, opts)
    storage = open_storage(url, retry_s=opts.storage_retry_s)
    name = opts.study_name or preset.name
    seed = preset.sampler.seed if opts.seed is None else opts.seed
    # Workers seeded alike would propose the same first points.
    seed += opts.worker_index or 0
    attrs = study_attrs(preset, opts.data_dir)
    existing = name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=pareto.directions(preset.objectives),
        load_if_exists=True,
        sampler=make_sampler(preset.sampler.name, seed, preset.sampler.options),
        pruner=presets.pruning(preset)[0],  # a Pareto study's rule is the objective's
    )
    if existing:
        for key, want in attrs.items():
            have = study.user_attrs.get(key)
            if have is not None and have != want:
                raise SearchError(
                    f"study {name!r} in {safe_url(url)} was made with {key}={have!r}, this "
                    f"preset gives {want!r}; resume with the original settings or pick a new "
                    "--study-name"
                )
    else:
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        study.set_user_attr("preset", preset.name)
        study.set_user_attr("epochs", preset.epochs)
        study.set_user_attr("lockbox_openings", 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(preset.objectives))
        # A baseline names what it sets; the rest takes the space's defaults (the report's
        # recipe), not a random draw, so that a baseline is one definite config.
        defaults = {n: d.default for n, d in presets.dims(preset).items() if n not in preset.fixed}
        for params in preset.baseline:
            study.enqueue_trial(defaults | params, skip_if_exists=True)
    return study


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards ``n_trials``: finished ones, less rejected configs."""
    return len(trained(study.get_trials(deepcopy=False)))


def run(opts: RunOptions) -> optuna.Study:
    preset = presets.load(opts.study)
    if opts.worker_index is None and (opts.workers > 1 or opts.gpus):
        from search.launcher import launch

        return launch(preset, opts)
    target = opts.n_trials or preset.n_trials
    timeout = opts.timeout if opts.timeout is not None else (preset.timeout or None)
    device = resolve_device(opts.device)
    if threads := os.environ.get("FMNIST_SEARCH_THREADS"):
        import torch

        torch.set_num_threads(int(threads))  # K workers share the cores, not oversubscribe
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our console lines say it once
    logging.getLogger("optuna").setLevel(logging.ERROR)
    study = open_study(preset, opts)
    prefix = "" if opts.worker_index is None else f"[w{opts.worker_index}] "
    objective = Objective(
        preset,
        data_dir=opts.data_dir,
        device=device,
        out_dir=Path(opts.out_dir),
        study_name=study.study_name,
        prefix=prefix,
        artifacts=artifacts_dir(opts.artifacts, storage_url(preset, opts), opts.out_dir),
        trial_callbacks=opts.trial_callbacks,
    )
    missing = target - finished_count(study)
    if missing <= 0:
        if opts.worker_index is None:
            print(
                f"study {study.study_name!r} already has {target} finished trials; "
                "raise --n-trials to run more"
            )
        return study
    if opts.worker_index is None:
        print(
            f"study {study.study_name!r}: {missing} of {target} trials to run "
            f"(space {preset.space}, {preset.epochs} epochs, pruner {preset.pruner.name}, "
            f"device {device})"
        )
    with signals_interrupt():
        try:
            ran = work(
                study,
                objective,
                target=target,
                url=storage_url(preset, opts),
                timeout=timeout,
                grace_s=opts.grace_s,
                retry_s=opts.storage_retry_s,
            )
        except Interrupted as e:
            raise SearchError(
                f"{e}; the running trial is marked FAIL and every finished trial is kept: "
                "rerun the same command to finish the study"
            ) from None
        except StorageLost as e:
            raise SearchError(str(e)) from None
    tail = ran[-MAX_FAILS_IN_A_ROW:]
    if len(tail) == MAX_FAILS_IN_A_ROW and all(t.state == TrialState.FAIL for t in tail):
        raise SearchError(
            f"{len(tail)} trials failed in a row, the last with: "
            f"{tail[-1].user_attrs.get('fail_reason')}; fix that and rerun"
        )
    return study
