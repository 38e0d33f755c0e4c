"""torchvision's raw MNIST-style idx files (``train-images-idx3-ubyte.gz`` ...).

The INR editing targets are the original digits (docs/datasets.md §8), which torchvision would
download at run time; the pipeline stages these files instead, under
``<dataset root>/MNIST/raw/`` (or ``FashionMNIST/raw/``).

idx format: big-endian int32 magic (2051 for uint8 images, 2049 for uint8 labels), one big-endian
int32 per dimension, then the uint8 values in C order. Files are gzipped when their name ends in
``.gz``; readers detect gzip by its magic bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from scalegmn.atomic import atomic_write
from scalegmn.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_GZIP_MAGIC = b"\x1f\x8b"
_SPLIT_PREFIX = {"training": "train", "testing": "t10k"}


def _write_idx(path: str | Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    with atomic_write(path) as tmp:
        if str(path).endswith(".gz"):
            # mtime=0: identical arrays give byte-identical files.
            tmp.write_bytes(gzip.compress(payload, mtime=0))
        else:
            tmp.write_bytes(payload)


def _read_idx(path: str | Path, magic: int, ndim: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(path, f"corrupt gzip stream (truncated download?): {err}") from None
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        raise DataError(
            path, f"bad idx magic number {found}, expected {magic}; not a torchvision idx file"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(path, "truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            path,
            f"holds {len(raw) - header} values but its header announces shape {shape} "
            f"({expected} values); the file is truncated or corrupt",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def write_idx_images(path: str | Path, images: np.ndarray) -> None:
    """Write uint8 images ``(N, H, W)`` as an idx3 file (gzipped if ``path`` ends in ``.gz``)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    _write_idx(path, images, IMAGES_MAGIC)


def read_idx_images(path: str | Path) -> np.ndarray:
    """Read an idx3 image file (plain or gzip): uint8 ``(N, H, W)``."""
    return _read_idx(path, IMAGES_MAGIC, 3)


def write_idx_labels(path: str | Path, labels: np.ndarray) -> None:
    """Write labels ``(N,)`` (integers 0..255) as an idx1 file."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("labels must lie in 0..255 to fit idx's uint8")
    _write_idx(path, labels.astype(np.uint8), LABELS_MAGIC)


def read_idx_labels(path: str | Path) -> np.ndarray:
    """Read an idx1 label file (plain or gzip): uint8 ``(N,)``."""
    return _read_idx(path, LABELS_MAGIC, 1)


def raw_file(root: str | Path, split: str, kind: str, dataset: str = "MNIST") -> Path:
    """``<root>/<dataset>/raw/{train|t10k}-{images-idx3|labels-idx1}-ubyte.gz``.

    ``split`` is ``"training"``/``"train"`` or ``"testing"``/``"test"``; ``kind`` is
    ``"images"`` or ``"labels"``. Falls back to the uncompressed file when only it exists.
    """
    prefix = _SPLIT_PREFIX.get(split) or {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split {split!r}: use 'training' or 'testing'")
    if kind not in ("images", "labels"):
        raise ValueError(f"kind {kind!r}: use 'images' or 'labels'")
    name = f"{prefix}-images-idx3-ubyte" if kind == "images" else f"{prefix}-labels-idx1-ubyte"
    folder = Path(root) / dataset / "raw"
    gz = folder / f"{name}.gz"
    return gz if gz.exists() or not (folder / name).exists() else folder / name


def read_mnist_images(root: str | Path, split: str, dataset: str = "MNIST") -> np.ndarray:
    """The original images of a split (``"training"`` -> train-*, ``"testing"`` -> t10k-*)."""
    return read_idx_images(raw_file(root, split, "images", dataset))


def read_mnist_labels(root: str | Path, split: str, dataset: str = "MNIST") -> np.ndarray:
    """The labels of a split, aligned with :func:`read_mnist_images`."""
    return read_idx_labels(raw_file(root, split, "labels", dataset))
