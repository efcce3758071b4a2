"""Find, verify and load the Fashion-MNIST IDX files as uint8 tensors.

Only the training part is reachable from here by name: the test part is read through
``fmnist.lockbox``, which final evaluation alone calls.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


class DataError(RuntimeError):
    """Missing, truncated or corrupt data; the message names the file and the fix."""


@dataclass(frozen=True)
class IdxFile:
    name: str
    shape: tuple[int, ...]
    sha256: str  # of the decompressed bytes: the .gz wrappers differ between mirrors


FILES: dict[str, tuple[IdxFile, IdxFile]] = {
    "train": (
        IdxFile(
            "train-images-idx3-ubyte",
            (60000, 28, 28),
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        IdxFile(
            "train-labels-idx1-ubyte",
            (60000,),
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
    ),
    "test": (
        IdxFile(
            "t10k-images-idx3-ubyte",
            (10000, 28, 28),
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        IdxFile(
            "t10k-labels-idx1-ubyte",
            (10000,),
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
}

HOW_TO_GET = (
    "get the data with `apt-get install dataset-fashion-mnist` (Debian), or let torchvision "
    "download it into ./data, or pass --data-dir / set FMNIST_DATA_DIR to a folder holding the "
    "four IDX files (.gz or decompressed)"
)


def parse_idx(raw: bytes, shape: tuple[int, ...], source: str) -> torch.Tensor:
    """Parse IDX bytes of unsigned bytes, checking magic number, dimensions and length."""
    ndim = len(shape)
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{source} is truncated ({len(raw)} bytes); delete it and {HOW_TO_GET}")
    if raw[0:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        raise DataError(
            f"{source} has a bad IDX magic number {raw[:4].hex()} (want 000008{ndim:02x}); "
            f"delete it and {HOW_TO_GET}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims != shape:
        raise DataError(
            f"{source} holds shape {dims}, expected {shape}; delete it and {HOW_TO_GET}"
        )
    body = raw[4 + 4 * ndim :]
    want = 1
    for d in shape:
        want *= d
    if len(body) != want:
        raise DataError(
            f"{source} is truncated or padded ({len(body)} of {want} data bytes); "
            f"delete it and {HOW_TO_GET}"
        )
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} cannot be read ({e}); delete it and {HOW_TO_GET}") from None


def candidate_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Where the files are looked for, in order. A folder the user names is the only place
    looked in: silently training on other files than the ones asked for would be worse."""
    explicit = data_dir or os.environ.get("FMNIST_DATA_DIR")
    if explicit:
        return [Path(explicit), Path(explicit) / "FashionMNIST" / "raw"]
    return [Path("data"), Path("data") / "FashionMNIST" / "raw", DEBIAN_DIR]


def _locate(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_dir(data_dir: str | Path | None = None, part: str = "train") -> Path:
    """The first candidate folder holding both files of ``part``; else torchvision's download
    into ./data; else one line naming every place tried."""
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        if all(_locate(d, f.name) for f in FILES[part]):
            return d
    if data_dir or os.environ.get("FMNIST_DATA_DIR"):
        # An explicit folder that lacks the files is a mistake to report, not to paper over.
        tried = ", ".join(str(d) for d in dirs)
        raise DataError(f"no Fashion-MNIST {part} files in {tried}; {HOW_TO_GET}")
    try:
        from torchvision.datasets import FashionMNIST  # heavy; only to download the files

        FashionMNIST(root="data", train=(part == "train"), download=True)
    except Exception as e:  # no network, or a mirror refused
        tried = ", ".join(str(d) for d in dirs)
        raise DataError(
            f"Fashion-MNIST {part} files not found (tried {tried}; torchvision download failed: "
            f"{type(e).__name__}); {HOW_TO_GET}"
        ) from None
    return Path("data") / "FashionMNIST" / "raw"


_MEMO: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _cache_dir() -> Path:
    root = os.environ.get("FMNIST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fmnist-search"
    )
    return Path(root)


def _load_file(path: Path, spec: IdxFile, *, cache: bool) -> torch.Tensor:
    if not cache:
        # Decoded test tensors on disk would sit next to the training ones, in reach of any
        # code that reads the cache: the test part is decoded from its file on each opening,
        # and what older versions cached of it is removed.
        for stale in _cache_dir().glob(f"{spec.name}-*.pt"):
            stale.unlink(missing_ok=True)
        return _decode(path, spec)
    stat = path.stat()
    key = hashlib.sha256(
        f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{spec.sha256}".encode()
    ).hexdigest()[:32]
    cached = _cache_dir() / f"{spec.name}-{key}.pt"
    if cached.is_file():
        try:
            tensor = torch.load(cached, weights_only=True)
            if tensor.dtype == torch.uint8 and tuple(tensor.shape) == spec.shape:
                return tensor
        except Exception:
            pass  # a broken cache entry is rebuilt below
    tensor = _decode(path, spec)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        torch.save(tensor, tmp)
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only cache only costs speed
    return tensor


def _decode(path: Path, spec: IdxFile) -> torch.Tensor:
    raw = _read_bytes(path)
    digest = hashlib.sha256(raw).hexdigest()
    tensor = parse_idx(raw, spec.shape, str(path))
    if digest != spec.sha256:
        raise DataError(
            f"{path} fails its checksum (sha256 {digest[:12]}..., want {spec.sha256[:12]}...): "
            f"the file is corrupt; delete it and {HOW_TO_GET}"
        )
    return tensor


def load_part(part: str, data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``part``, verified; the training
    part is cached on disk (FMNIST_CACHE_DIR), the test part never is.

    Private to the package by convention: training code calls ``load_train``; the test part
    is opened through ``fmnist.lockbox.open_test_set``.
    """
    directory = find_dir(data_dir, part)
    img_spec, lbl_spec = FILES[part]
    paths = (_locate(directory, img_spec.name), _locate(directory, lbl_spec.name))
    key = tuple((str(p.resolve()), p.stat().st_mtime_ns) for p in paths if p)
    if key not in _MEMO:
        images = _load_file(paths[0], img_spec, cache=part == "train")
        labels = _load_file(paths[1], lbl_spec, cache=part == "train")
        if int(labels.max()) > 9:
            raise DataError(f"{paths[1]} holds labels above 9; delete it and {HOW_TO_GET}")
        _MEMO[key] = (images, labels.long())
    return _MEMO[key]


def load_train(data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The 60k training images and labels; the only data entry point training code uses."""
    return load_part("train", data_dir)
