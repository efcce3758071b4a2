"""Create or resume a study and run trials until it holds ``n_trials`` finished ones.

``n_trials`` is the total the study should reach (COMPLETE + PRUNED), not a number to add:
rerunning the same command after an interruption trains only what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from fmnist.data import load_train
from fmnist.split import make_split
from fmnist.train import resolve_device
from search import preset as presets
from search.errors import SearchError
from search.objective import Interrupted, Objective, TrialFailed
from search.pruners import make_pruner
from search.samplers import make_sampler
from search.storage import DEFAULT_URL, open_storage, safe_url

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_FAILS_IN_A_ROW = 3  # then the problem is not the trial: stop and say so


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
    }


def open_study(preset: presets.StudyPreset, opts: RunOptions) -> optuna.Study:
    url = opts.storage or preset.storage or DEFAULT_URL
    storage = open_storage(url)
    name = opts.study_name or preset.name
    seed = preset.sampler.seed if opts.seed is None else opts.seed
    attrs = study_attrs(preset, opts.data_dir)
    existing = name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        sampler=make_sampler(preset.sampler.name, seed, preset.sampler.options),
        pruner=make_pruner(preset.pruner.name, preset.epochs, preset.pruner.options),
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
        # A baseline names what it sets; the rest takes the space's defaults (the report's
        # recipe), not a random draw, so that a baseline is one definite config.
        defaults = {n: d.default for n, d in presets.dims(preset).items() if n not in preset.fixed}
        for params in preset.baseline:
            study.enqueue_trial(defaults | params, skip_if_exists=True)
    return study


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


@contextlib.contextmanager
def signals_interrupt():
    """SIGINT and SIGTERM raise ``Interrupted`` in the main thread while a search runs."""

    def handler(signum, _frame):
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run(opts: RunOptions) -> optuna.Study:
    preset = presets.load(opts.study)
    target = opts.n_trials or preset.n_trials
    timeout = opts.timeout if opts.timeout is not None else (preset.timeout or None)
    device = resolve_device(opts.device)
    study = open_study(preset, opts)
    objective = Objective(
        preset,
        data_dir=opts.data_dir,
        device=device,
        out_dir=Path(opts.out_dir),
        study_name=study.study_name,
    )
    missing = target - finished_count(study)
    if missing <= 0:
        print(
            f"study {study.study_name!r} already has {target} finished trials; "
            "raise --n-trials to run more"
        )
        return study
    print(
        f"study {study.study_name!r}: {missing} of {target} trials to run "
        f"(space {preset.space}, {preset.epochs} epochs, pruner {preset.pruner.name}, "
        f"device {device})"
    )
    fails = []

    def stop_on_repeated_failure(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        fails[:] = fails + [trial] if trial.state == TrialState.FAIL else []
        if len(fails) >= MAX_FAILS_IN_A_ROW:
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our console lines say it once
    logging.getLogger("optuna").setLevel(logging.ERROR)
    with signals_interrupt():
        try:
            study.optimize(
                objective,
                n_trials=missing,
                timeout=timeout,
                catch=(TrialFailed,),
                callbacks=[MaxTrialsCallback(target, states=FINISHED), stop_on_repeated_failure],
            )
        except Interrupted as e:
            raise SearchError(
                f"{e}; the running trial is marked FAIL and every finished trial is kept: "
                "rerun the same command to finish the study"
            ) from None
    if len(fails) >= MAX_FAILS_IN_A_ROW:
        raise SearchError(
            f"{len(fails)} trials failed in a row, the last with: "
            f"{fails[-1].user_attrs.get('fail_reason')}; fix that and rerun"
        )
    return study
