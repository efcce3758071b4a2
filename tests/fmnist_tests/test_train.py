from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from fmnist import data, lockbox
from fmnist.classifier import NAN_CHECK_EVERY, Classifier, DivergedError, lr_factor
from fmnist.config import (
    ConfigError,
    DataConfig,
    OptimConfig,
    ResNetConfig,
    RunConfig,
    VGGConfig,
    from_dict,
    full_train_config,
    load_toml,
    replace,
    to_dict,
)
from fmnist.data import DataError, load_train
from fmnist.record import train_run
from fmnist.split import NO_SPLIT
from fmnist.train import DeviceBatches, evaluate, fit, resolve_device


@pytest.fixture
def parts_opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every part of the data set read from here on, through any path to the files."""
    opened: list[str] = []
    real = data.load_part

    def recording(part: str, data_dir=None):
        opened.append(part)
        return real(part, data_dir)

    monkeypatch.setattr(data, "load_part", recording)
    monkeypatch.setattr(lockbox, "load_part", recording)
    return opened


@pytest.mark.slow  # trains for more than a few seconds
def test_one_epoch_on_3000_images_beats_60_percent(data_dir: Path) -> None:
    config = RunConfig(
        model=VGGConfig(widths=(8, 16), convs_per_block=1, fc_width=32),
        data=DataConfig(subset=3000),  # validated on the full 6,000-image split
        optim=OptimConfig(lr=3e-3, batch_size=64),
        epochs=1,
    )
    result = fit(config, data_dir=data_dir, device="cpu")
    assert result.train_images == 3000
    assert len(result.history) == 1
    assert result.val_acc > 0.60


@pytest.mark.slow  # trains for more than a few seconds
@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_same_seed_same_result_on_cpu(
    tiny_config: RunConfig, data_dir: Path, precision: str
) -> None:
    config = replace(
        tiny_config,
        precision=precision,
        **{"augment.translate_px": 2, "augment.rotate_deg": 7.0},
    )
    first = fit(config, data_dir=data_dir, device="cpu")
    second = fit(config, data_dir=data_dir, device="cpu")
    other = fit(replace(config, seed=1), data_dir=data_dir, device="cpu")
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in first.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in second.history]
    assert first.val_acc == second.val_acc
    assert first.history[0]["train_loss"] != other.history[0]["train_loss"]
    assert first.split.fingerprint == other.split.fingerprint  # the model seed keeps the split


@pytest.mark.slow  # trains for more than a few seconds
def test_trains_without_the_test_files(
    tiny_config: RunConfig, train_only_dir: Path, tmp_path: Path, parts_opened: list[str]
) -> None:
    metrics, _ = train_run(tiny_config, tmp_path / "run", data_dir=train_only_dir, device="cpu")
    assert metrics["val_acc"] is not None
    assert metrics["test_acc"] is None and metrics["lockbox_openings"] == 0
    assert parts_opened == ["train"]


@pytest.mark.slow  # trains for more than a few seconds
def test_only_evaluate_test_opens_the_lockbox_once(
    tiny_config: RunConfig,
    make_data_dir: Callable[..., Path],
    tmp_path: Path,
    parts_opened: list[str],
) -> None:
    folder = make_data_dir("train", "test")
    metrics, _ = train_run(
        tiny_config, tmp_path / "run", data_dir=folder, device="cpu", evaluate_test=True
    )
    assert parts_opened.count("test") == 1
    assert metrics["lockbox_openings"] == 1
    assert 0.0 <= metrics["test_acc"] <= 1.0
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["test_acc"] == metrics["test_acc"] and written["lockbox_openings"] == 1


def test_evaluate_test_without_test_files_names_them(
    tiny_config: RunConfig, train_only_dir: Path, tmp_path: Path
) -> None:
    config = replace(tiny_config, **{"data.subset": 128, "data.val_size": 100})
    with pytest.raises(DataError, match=f"no Fashion-MNIST test files in {train_only_dir}"):
        train_run(
            config, tmp_path / "run", data_dir=train_only_dir, device="cpu", evaluate_test=True
        )


@pytest.mark.slow  # trains for more than a few seconds
def test_run_files(tiny_config: RunConfig, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    provenance = {"study": "unit-test"}
    metrics, result = train_run(
        tiny_config, out, data_dir=data_dir, device="cpu", provenance=provenance
    )
    assert load_toml(out / "config.toml") == (tiny_config, provenance)
    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    assert from_dict(RunConfig, written["config"]) == tiny_config
    assert written["split_fingerprint"] == result.split.fingerprint
    assert written["train_images"] == 1000 and written["epochs"] == 1
    assert len(written["epoch_seconds"]) == 1 and written["epoch_seconds"][0] > 0
    assert written["params"] > 0 and written["macs"] > 0
    assert {"torch", "lightning", "python"} <= set(written["packages"])
    assert written["git_commit"]
    assert list(out.glob("lightning_logs/*/events.out.tfevents.*"))

    # The checkpoint holds the trained network: it scores what validation reported.
    ckpt = torch.load(out / "model.ckpt", weights_only=True)
    assert from_dict(RunConfig, ckpt["config"]) == tiny_config
    module = Classifier(tiny_config, steps_per_epoch=1)
    module.model.load_state_dict(ckpt["state_dict"])
    images, labels = load_train(data_dir)
    val = result.split.val_idx
    assert evaluate(module, images[val], labels[val]) == pytest.approx(metrics["val_acc"])


def test_a_net_under_eight_channels_trains_in_nchw(tiny_config: RunConfig) -> None:
    """On a CPU without AVX-512, oneDNN's channels-last backward of this net's strided 1x1
    convolutions over 4 channels aborted the process within 20 steps; it keeps NCHW."""
    narrow = ResNetConfig(intro_width=4, widths=(4, 8), blocks=(1, 1), strides=(2, 2))
    module = Classifier(replace(tiny_config, model=narrow), steps_per_epoch=1)
    assert not module.channels_last
    for _ in range(20):
        module(torch.randn(64, 1, 28, 28)).logsumexp(1).mean().backward()
    wide = Classifier(tiny_config, steps_per_epoch=1)  # 8 channels and more: channels-last
    assert wide.channels_last
    weights = [p for p in wide.model.parameters() if p.dim() == 4]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


@pytest.mark.slow  # trains for more than a few seconds
def test_full_train_skips_validation(tiny_config: RunConfig, data_dir: Path) -> None:
    result = fit(full_train_config(tiny_config, subset=1000), data_dir=data_dir, device="cpu")
    assert result.split.val_idx.numel() == 0 and result.split.fingerprint == NO_SPLIT
    assert result.train_images == 1000
    assert result.val_acc is None and "val_acc" not in result.history[0]


class StopAfterOneBatch(pl.Callback):
    """Ends the fit after its first batch: what is trained on is decided before it."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        trainer.should_stop = True


def test_full_train_uses_every_training_image(
    tiny_config: RunConfig, data_dir: Path, tmp_path: Path
) -> None:
    """The config's search-sized subset and validation split are dropped, and the saved
    config and metrics say what was trained on."""
    assert tiny_config.data.subset == 1000 and tiny_config.data.val_size == 1000
    out = tmp_path / "run"
    metrics, result = train_run(
        tiny_config,
        out,
        data_dir=data_dir,
        device="cpu",
        full_train=True,
        callbacks=[StopAfterOneBatch()],
    )
    assert metrics["train_images"] == result.train_images == 60000
    assert metrics["full_train"] and metrics["val_acc"] is None
    assert metrics["split_fingerprint"] == NO_SPLIT
    saved, _ = load_toml(out / "config.toml")
    assert (saved.data.val_size, saved.data.subset) == (0, 0)
    assert saved == from_dict(RunConfig, metrics["config"]) == full_train_config(tiny_config)


@pytest.mark.parametrize(
    ("device", "words"),
    [
        ("foo", "is not one of auto, cpu, cuda, cuda:N"),
        ("cpu:1", "is not one of auto, cpu, cuda, cuda:N"),
        ("cuda:x", "is not one of auto, cpu, cuda, cuda:N"),
        ("cuda:7" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}",
         "CUDA device"),
    ],
)  # fmt: skip
def test_bad_device_is_one_line_naming_it(device: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        resolve_device(device)
    assert repr(device) in str(err.value)


@pytest.mark.slow  # trains until the loss diverges
def test_divergence_is_reported(tiny_config: RunConfig, data_dir: Path) -> None:
    config = replace(
        tiny_config, **{"optim.optimizer": "sgd", "optim.lr": 1e12, "optim.schedule": "constant"}
    )
    with pytest.raises(DivergedError, match="lower optim.lr"):
        fit(config, data_dir=data_dir, device="cpu")


class BatchCounter(pl.Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, *args) -> None:
        self.batches += 1


@pytest.mark.slow  # trains for more than a few seconds
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_divergence_is_caught_within_the_epoch(
    tiny_config: RunConfig, data_dir: Path, device: str
) -> None:
    """The in-loop check stops a diverged run long before its epoch ends (on a GPU without
    waiting for the device, one check later)."""
    config = replace(
        tiny_config,
        **{
            "optim.optimizer": "sgd",
            "optim.lr": 1e12,
            "optim.schedule": "constant",
            "optim.batch_size": 16,
            "data.subset": 4000,
        },
    )
    counter = BatchCounter()
    with pytest.raises(DivergedError, match="in epoch 0"):
        fit(config, data_dir=data_dir, device=device, callbacks=[counter])
    steps_per_epoch = 3000 // 16
    lag = 1 if device == "cpu" else 3  # checks until a GPU copy is seen (it may not have landed)
    assert counter.batches <= lag * NAN_CHECK_EVERY < steps_per_epoch


# Optimisers and schedules, without training


def learning_rates(config: RunConfig, steps_per_epoch: int) -> list[float]:
    module = Classifier(config, steps_per_epoch=steps_per_epoch)
    setup = module.configure_optimizers()
    assert setup["lr_scheduler"]["interval"] == "step"
    opt, sched = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(config.epochs * steps_per_epoch):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


@pytest.mark.parametrize(
    ("optimizer", "cls"),
    [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)],
)
def test_optimizers(tiny_config: RunConfig, optimizer: str, cls: type) -> None:
    config = replace(
        tiny_config,
        **{"optim.optimizer": optimizer, "optim.weight_decay": 0.01, "optim.schedule": "constant"},
    )
    opt = Classifier(config, steps_per_epoch=10).configure_optimizers()["optimizer"]
    assert type(opt) is cls
    assert opt.param_groups[0]["weight_decay"] == 0.01
    if optimizer == "sgd":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def test_one_cycle_steps_per_batch(tiny_config: RunConfig) -> None:
    config = replace(tiny_config, epochs=4, **{"optim.lr": 0.01})
    rates = learning_rates(config, steps_per_epoch=25)
    peak = max(range(len(rates)), key=rates.__getitem__)
    assert rates[peak] == pytest.approx(0.01)
    assert 20 <= peak <= 30  # a quarter of the 100 steps, not of the 4 epochs
    assert rates[0] < 0.01 / 10 and rates[-1] < 0.01 / 100
    assert len(set(rates[:25])) > 20  # the rate moves within an epoch


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 8])
def test_one_cycle_on_a_few_steps(tiny_config: RunConfig, steps: int) -> None:
    config = replace(tiny_config, epochs=1, **{"optim.lr": 0.01})
    rates = learning_rates(config, steps_per_epoch=steps)
    assert len(rates) == steps and all(0 < r <= 0.01 * (1 + 1e-9) for r in rates)


def test_one_cycle_sgd_keeps_its_momentum(tiny_config: RunConfig) -> None:
    config = replace(
        tiny_config, **{"optim.optimizer": "sgd", "optim.momentum": 0.8, "optim.lr": 0.01}
    )
    setup = Classifier(config, steps_per_epoch=20).configure_optimizers()
    opt, sched = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    seen = []
    for _ in range(config.epochs * 20):
        seen.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert max(seen) == pytest.approx(0.8) and min(seen) < 0.8


@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
def test_schedules_with_warmup(tiny_config: RunConfig, schedule: str) -> None:
    config = replace(
        tiny_config,
        epochs=10,
        **{
            "optim.schedule": schedule,
            "optim.warmup_epochs": 1.0,
            "optim.step_epochs": 4,
            "optim.step_gamma": 0.5,
        },
    )
    factor = lr_factor(config, steps_per_epoch=10)
    assert [factor(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    after = [factor(s) for s in range(10, 100)]
    if schedule == "cosine":
        assert after[0] == pytest.approx(1.0)
        assert all(a >= b for a, b in zip(after, after[1:], strict=False))
        assert after[-1] < 0.01
    elif schedule == "step":
        assert factor(39) == 1.0 and factor(40) == 0.5 and factor(80) == 0.25
    else:
        assert set(after) == {1.0}
    rates = learning_rates(config, steps_per_epoch=10)
    assert rates[50] == pytest.approx(config.optim.lr * factor(50))


def test_batches_cover_the_data_once_per_epoch() -> None:
    images = torch.arange(10).view(10, 1, 1).expand(10, 28, 28).to(torch.uint8)
    labels = torch.arange(10)
    ordered = DeviceBatches(images, labels, 4, shuffle=False)
    assert len(ordered) == 3
    assert torch.cat([y for _, y in ordered]).tolist() == list(range(10))
    torch.manual_seed(0)
    shuffled = DeviceBatches(images, labels, 4, shuffle=True)
    seen = torch.cat([y for _, y in shuffled])
    assert len(shuffled) == 2 and seen.numel() == 8  # the ragged last batch is dropped
    assert len(set(seen.tolist())) == 8
    for x, y in shuffled:
        assert torch.equal(x[:, 0, 0].long(), y)


def test_config_is_not_changed_by_training(tiny_config: RunConfig, data_dir: Path) -> None:
    before = to_dict(tiny_config)
    result = fit(tiny_config, data_dir=data_dir, device="cpu")
    assert to_dict(result.config) == before == result.module.hparams["config"]


@pytest.mark.gpu
def test_fit_on_cuda_in_bf16(tiny_config: RunConfig, data_dir: Path) -> None:
    result = fit(tiny_config, data_dir=data_dir, device="cuda")
    assert result.device == "cuda" and result.precision == "bf16-mixed"
    assert result.val_acc is not None and 0.0 <= result.val_acc <= 1.0


@pytest.mark.slow
def test_compiled_network_trains_and_keeps_its_state_dict(
    tiny_config: RunConfig, data_dir: Path
) -> None:
    """``compile = true`` (about 40 s of compiling on two CPU cores) trains like eager mode."""
    eager = fit(tiny_config, data_dir=data_dir)
    compiled = fit(replace(tiny_config, compile=True), data_dir=data_dir)
    assert compiled.module.model._compiled_call_impl is not None
    assert compiled.module.state_dict().keys() == eager.module.state_dict().keys()
    assert compiled.history[-1]["train_loss"] == pytest.approx(
        eager.history[-1]["train_loss"], rel=0.02
    )
