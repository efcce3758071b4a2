from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision.datasets

from fmnist import data
from fmnist.data import FILES, DataError, candidate_dirs, find_dir, load_part, parse_idx

LABELS = FILES["train"][1].name
IMAGES = FILES["train"][0].name


def idx_bytes(body: bytes, dims: tuple[int, ...], *, dtype: int = 0x08) -> bytes:
    header = bytes([0, 0, dtype, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + body


def write(path: Path, raw: bytes) -> Path:
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def assert_one_line_naming(err: pytest.ExceptionInfo[DataError], path: Path | str) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    assert "dataset-fashion-mnist" in message  # and says how to get good files


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """torchvision's download fails as it does without a network; records each attempt."""
    attempts: list[str] = []

    def refuse(root: str, **kwargs: object) -> None:
        attempts.append(root)
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", refuse)
    return attempts


# parse_idx on bytes


def test_parse_idx_reads_shape_and_values() -> None:
    body = bytes(range(24))
    out = parse_idx(idx_bytes(body, (2, 3, 4)), (2, 3, 4), "tiny")
    assert out.dtype == torch.uint8
    assert out.shape == (2, 3, 4)
    assert out.flatten().tolist() == list(range(24))


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x00\x00\x08", "truncated"),  # shorter than the header
        (idx_bytes(bytes(23), (2, 3, 4)), "truncated"),
        (idx_bytes(bytes(25), (2, 3, 4)), "padded"),
        (idx_bytes(bytes(24), (2, 3, 4), dtype=0x0D), "magic"),  # float data
        (idx_bytes(bytes(24), (6, 4)), "magic"),  # two dimensions, not three
        (b"\x1f\x8b" + idx_bytes(bytes(24), (2, 3, 4))[2:], "magic"),  # still gzipped
        (idx_bytes(bytes(24), (3, 2, 4)), "shape"),
    ],
)
def test_parse_idx_rejects_malformed_bytes(raw: bytes, words: str) -> None:
    with pytest.raises(DataError, match=words) as err:
        parse_idx(raw, (2, 3, 4), "some/file-idx3-ubyte")
    assert_one_line_naming(err, "some/file-idx3-ubyte")


# Whole files, as load_part meets them


def good_labels(data_dir: Path) -> bytes:
    for name in (LABELS, f"{LABELS}.gz"):
        if (data_dir / name).is_file():
            raw = (data_dir / name).read_bytes()
            return gzip.decompress(raw) if name.endswith(".gz") else raw
    raise FileNotFoundError(LABELS)


LABEL_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda good: good[: len(good) // 2],
    "magic": lambda good: b"\x00\x00\x08\x03" + good[4:],
    "shape": lambda good: good[:4] + (59999).to_bytes(4, "big") + good[8:-1],
    "checksum": lambda good: good[:-1] + bytes([(good[-1] + 1) % 10]),
}


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("damage", sorted(LABEL_DAMAGE))
def test_damaged_labels_file_is_named(
    damage: str, suffix: str, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "_MEMO", {})
    folder = tmp_path / "data"
    folder.mkdir()
    images = next(data_dir.glob(f"{IMAGES}*"))
    (folder / images.name).symlink_to(images)
    bad = write(folder / f"{LABELS}{suffix}", LABEL_DAMAGE[damage](good_labels(data_dir)))
    with pytest.raises(DataError, match=damage) as err:
        load_part("train", folder)
    assert_one_line_naming(err, bad)


# mtime=0: the same bytes in every process, so each pytest-xdist worker collects the same test.
CUT_SHORT = gzip.compress(idx_bytes(bytes(range(256)) * 1000, (60000, 28, 28)), mtime=0)[:100]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        (f"{IMAGES}.gz", b"not gzip at all", "cannot be read"),
        (f"{IMAGES}.gz", CUT_SHORT, "cannot be read"),  # a download that stopped early
        (IMAGES, idx_bytes(b"", (60000, 28, 28)), "truncated"),
    ],
)
def test_damaged_images_file_is_named(
    name: str,
    content: bytes,
    words: str,
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(data, "_MEMO", {})
    folder = tmp_path / "data"
    folder.mkdir()
    bad = folder / name
    bad.write_bytes(content)
    (folder / LABELS).write_bytes(good_labels(data_dir))
    with pytest.raises(DataError, match=words) as err:
        load_part("train", folder)
    assert_one_line_naming(err, bad)


def test_replaced_file_is_checked_again_not_served_from_cache(
    tmp_path: Path, data_dir: Path, cache_dir: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    images = next(data_dir.glob(f"{IMAGES}*"))
    (folder / images.name).symlink_to(images)
    good = good_labels(data_dir)
    labels = write(folder / LABELS, good)
    load_part("train", folder)
    write(labels, LABEL_DAMAGE["checksum"](good))  # same size, different content
    later = labels.stat().st_mtime_ns + 1_000_000_000
    os.utime(labels, ns=(later, later))
    with pytest.raises(DataError, match="checksum"):
        load_part("train", folder)


def test_real_training_set(data_dir: Path) -> None:
    images, labels = load_part("train", data_dir)
    assert images.dtype == torch.uint8 and images.shape == (60000, 28, 28)
    assert labels.dtype == torch.int64 and labels.shape == (60000,)
    assert torch.bincount(labels).tolist() == [6000] * 10


def test_second_load_is_fast(data_dir: Path, cache_dir: Path) -> None:
    start = time.perf_counter()
    first = load_part("train", data_dir)
    parse = time.perf_counter() - start

    start = time.perf_counter()
    again = load_part("train", data_dir)
    in_process = time.perf_counter() - start

    data._MEMO.clear()
    start = time.perf_counter()
    from_disk = load_part("train", data_dir)
    from_cache = time.perf_counter() - start

    assert again[0] is first[0]
    assert torch.equal(from_disk[0], first[0]) and torch.equal(from_disk[1], first[1])
    assert len(list(cache_dir.glob("*.pt"))) == 2
    assert in_process < min(0.05, parse / 10)
    assert from_cache < min(1.0, parse / 2), (parse, from_cache)


def test_only_the_training_part_is_cached_on_disk(data_dir: Path, cache_dir: Path) -> None:
    """Decoded test tensors are never left beside the training ones, and a test entry an
    older version left there is removed when the lockbox is opened."""
    load_part("train", data_dir)
    train_entries = sorted(cache_dir.glob("*.pt"))
    assert len(train_entries) == 2 and all(p.name.startswith("train-") for p in train_entries)
    leftover = cache_dir / f"{FILES['test'][0].name}-0123456789abcdef.pt"
    leftover.write_bytes(b"decoded test images")
    images, labels = load_part("test", data_dir)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert sorted(cache_dir.glob("*")) == train_entries


# Where the files are looked for


def test_default_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    assert candidate_dirs() == [
        Path("data"),
        Path("data/FashionMNIST/raw"),
        tmp_path / "debian",
    ]


@pytest.mark.parametrize(
    ("present", "found"),
    [
        (["data", "data/FashionMNIST/raw", "debian"], "data"),
        (["data/FashionMNIST/raw", "debian"], "data/FashionMNIST/raw"),
        (["debian"], "debian"),
    ],
)
def test_first_folder_with_the_files_wins(
    present: list[str],
    found: str,
    make_data_dir: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    offline: list[str],
) -> None:
    work = tmp_path / "work"
    for where in present:
        make_data_dir("train", name=f"work/{where}")
    monkeypatch.chdir(work)
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", work / "debian")
    assert find_dir().resolve() == (work / found).resolve()
    assert not offline


def test_torchvision_layout_under_an_explicit_folder(
    make_data_dir: Callable[..., Path], tmp_path: Path
) -> None:
    make_data_dir("train", name="mine/FashionMNIST/raw")
    assert find_dir(tmp_path / "mine") == tmp_path / "mine/FashionMNIST/raw"


def test_explicit_folder_beats_environment_beats_defaults(
    make_data_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arg, env = make_data_dir("train", name="arg"), make_data_dir("train", name="env")
    monkeypatch.setenv("FMNIST_DATA_DIR", str(env))
    assert find_dir() == env
    assert find_dir(arg) == arg


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_explicit_folder_without_files_is_an_error(
    how: str,
    train_only_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    offline: list[str],
) -> None:
    """A folder the user names is the only place looked in: no fallback, no download."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    for folder, part in [(empty, "train"), (train_only_dir, "test")]:
        if how == "environment":
            monkeypatch.setenv("FMNIST_DATA_DIR", str(folder))
        with pytest.raises(DataError, match=f"no Fashion-MNIST {part} files") as err:
            if how == "environment":
                load_part(part)
            else:
                load_part(part, folder)
        assert_one_line_naming(err, folder)
        assert str(folder / "FashionMNIST" / "raw") in str(err.value)
    assert not offline


def test_nothing_found_lists_every_place_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(DataError) as err:
        load_part("train")
    message = str(err.value)
    assert offline == ["data"]  # the download was tried, into ./data
    assert "\n" not in message
    assert f"tried data, data/FashionMNIST/raw, {tmp_path / 'debian'};" in message
    assert "torchvision download failed" in message
    assert "--data-dir" in message and "FMNIST_DATA_DIR" in message
    assert "apt-get install dataset-fashion-mnist" in message
