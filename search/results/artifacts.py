"""Per-trial files in an Optuna artifact store, which optuna-dashboard shows on each trial's
page: the resolved config (TOML), the learning curves and the validation confusion matrix
(PNG), and a retrain's model card on the trial it retrained.

The store is a folder beside the storage by default (``search.storage.artifact_folder``); a
server storage has no folder, so ``run`` puts it under its ``--out`` and the other commands
look in ``runs/artifacts``. ``--artifacts DIR`` chooses another, which every command reading
the study must then be given too.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from fmnist.config import RunConfig, dump_toml
from fmnist.confusion import CLASSES, validation_confusion
from fmnist.train import FitResult
from search.storage import StorageLost
from search.storage.reference import reference

CONFIG = "config.toml"
CURVES = "learning_curves.png"
CONFUSION = "confusion_matrix.png"
ARTIFACTS_ATTR_PREFIX = "artifacts:"  # optuna.artifacts' key for an artifact's metadata
DASHBOARD_TRIAL_PREFIX = "dashboard:artifacts:"  # optuna-dashboard's, + "<trial_id>:<id>"

_log = logging.getLogger(__name__)


def open_store(directory: str | Path) -> FileSystemArtifactStore:
    """A file-system artifact store on ``directory``, created if missing."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(Path(directory))


def record_trial(
    trial: optuna.Trial,
    directory: Path | None,
    storage: str | None,
    config: RunConfig,
    *,
    result: FitResult | None = None,
    ckpt: Path | None = None,
    history: Sequence[dict[str, float]] = (),
    data_dir: str | Path | None = None,
) -> list[str]:
    """Upload what a finished trial has: its config always; its learning curves from the fit
    (or, for a pruned or failed trial, its ``history`` so far, else its last checkpoint's);
    its confusion matrix when it completed. Call it while the trial is still running: a
    finished trial's attributes are read-only. The config's ``[provenance]`` names ``storage``
    (its password left out), so a config taken from the dashboard reopens exactly this study.
    A failure here is logged and stored as ``artifacts_error``, never fails the trial; a lost
    storage still stops the worker. Returns the names uploaded (none without a ``directory``)."""
    if directory is None:
        return []
    try:
        return _record(trial, directory, storage, config, result, ckpt, history, data_dir)
    except StorageLost:
        raise
    except Exception as e:
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        _log.warning("trial %d: artifacts not uploaded: %s", trial.number, reason)
        trial.set_user_attr("artifacts_error", reason)
        return []


def _record(trial, directory, storage, config, result, ckpt, history, data_dir) -> list[str]:
    store = open_store(directory)
    history = result.history if result is not None else (history or saved_history(ckpt))
    title = f"trial {trial.number} of study {trial.study.study_name!r}"
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp) / CONFIG]
        provenance = {
            "study": trial.study.study_name,
            "trial": trial.number,
            "storage": reference(storage),
        }
        files[0].write_text(dump_toml(config, provenance))
        if history:
            files.append(plot_curves(history, Path(tmp) / CURVES, title=title))
        if result is not None:
            matrix = validation_confusion(result, data_dir)
            files.append(plot_confusion(matrix, Path(tmp) / CONFUSION, title=title))
        for path in files:
            upload(trial, store, path)
    return [path.name for path in files]


def upload(
    study_or_trial: optuna.Trial | optuna.Study | optuna.trial.FrozenTrial,
    store: FileSystemArtifactStore,
    path: Path,
    storage: optuna.storages.BaseStorage | None = None,
) -> str:
    """Upload one file, typed so that a browser shows TOML and Markdown as text."""
    text = {".toml": "text/plain", ".md": "text/markdown", ".json": "application/json"}
    return upload_artifact(
        artifact_store=store,
        file_path=str(path),
        study_or_trial=study_or_trial,
        storage=storage,
        mimetype=text.get(path.suffix),
    )


def saved_history(ckpt: Path | None) -> list[dict[str, float]]:
    if ckpt is None or not ckpt.is_file():
        return []
    return list(torch.load(ckpt, map_location="cpu", weights_only=False).get("history", []))


def plot_curves(history: Sequence[dict[str, float]], path: Path, *, title: str) -> Path:
    """Training and validation loss, and validation accuracy, per epoch."""
    # matplotlib loads when a trial draws its first plot, not with every worker.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] + 1 for h in history]
    fig = Figure(figsize=(9, 3.6))  # fixed margins: a layout engine doubles the drawing time
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.8, wspace=0.3)
    loss, acc = fig.subplots(1, 2)
    style = "o-" if len(epochs) <= 30 else "-"
    loss.plot(epochs, [h["train_loss"] for h in history], style, label="training")
    scored = [(e, h) for e, h in zip(epochs, history, strict=True) if "val_acc" in h]
    if scored:
        loss.plot(
            [e for e, _ in scored], [h["val_loss"] for _, h in scored], style, label="validation"
        )
        acc.plot([e for e, _ in scored], [h["val_acc"] for _, h in scored], style, color="C1")
    loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    loss.legend()
    acc.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
    for ax in (loss, acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, 3 or 200 of them
        ax.grid(alpha=0.3)
    fig.suptitle(f"Learning curves, {title}")
    fig.savefig(path, dpi=100)
    return path


def plot_confusion(matrix: torch.Tensor, path: Path, *, title: str) -> Path:
    """Counts, with each row (true class) shaded by its share, so that a weak class stands out
    whatever the split's size."""
    from matplotlib.figure import Figure  # deferred: matplotlib is heavy (see plot_curves)

    counts = matrix.to(torch.long)
    share = counts / counts.sum(1, keepdim=True).clamp(min=1)
    fig = Figure(figsize=(7.5, 6.5))
    fig.subplots_adjust(left=0.16, right=0.98, bottom=0.17, top=0.9)
    ax = fig.subplots()
    image = ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            if counts[i, j]:
                white = share[i, j] > 0.5
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if white else "black")  # fmt: skip
    ticks = range(len(CLASSES))
    ax.set_xticks(ticks, CLASSES, rotation=45, ha="right")
    ax.set_yticks(ticks, CLASSES)
    ax.set(xlabel="predicted", ylabel="true")
    accuracy = counts.diag().sum().item() / max(1, counts.sum().item())
    ax.set_title(f"Validation confusion, {title}\naccuracy {accuracy:.4f}", fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the true class")
    fig.savefig(path, dpi=100)
    return path


def attach_to_trial(
    study: optuna.Study, trial_number: int, paths: Sequence[Path], directory: str | Path
) -> list[str]:
    """Upload files (a retrain's model card) for a finished trial, named after it.

    Optuna freezes a finished trial's attributes, so each file is a study artifact (listed by
    ``get_all_artifact_meta(study)`` and on the dashboard's study page), and is also entered
    under optuna-dashboard's per-trial key in the study's attributes, which its trial page
    lists beside the trial's own artifacts."""
    trial = study.get_trials(deepcopy=False)[trial_number]
    store = open_store(directory)
    ids = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in map(Path, paths):
            named = Path(tmp) / f"trial-{trial_number:04d}-{path.name}"
            named.write_bytes(path.read_bytes())
            artifact_id = upload(study, store, named)
            storage, study_id = study._storage, study._study_id
            meta = storage.get_study_system_attrs(study_id)[ARTIFACTS_ATTR_PREFIX + artifact_id]
            key = f"{DASHBOARD_TRIAL_PREFIX}{trial._trial_id}:{artifact_id}"
            storage.set_study_system_attr(study_id, key, meta)
            ids.append(artifact_id)
    return ids
