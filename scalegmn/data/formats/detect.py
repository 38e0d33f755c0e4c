"""Which weight-zoo format a dataset root (or a single ``.pth`` file) holds."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from scalegmn.data.formats import cifar_inr, cnn_zoo, fmnist_inr, mnist_inr, wild_park
from scalegmn.errors import DataError

FORMATS: dict[str, ModuleType] = {
    "mnist_inr": mnist_inr,
    "fmnist_inr": fmnist_inr,
    "cifar_inr": cifar_inr,
    "cnn_zoo": cnn_zoo,
    "wild_park": wild_park,
}


def _any(root: Path, pattern: str) -> bool:
    return next(iter(root.glob(pattern)), None) is not None


def _layout_of(root: Path) -> str | None:
    if (root / cnn_zoo.WEIGHTS_FILE).is_file():
        return "cnn_zoo"
    if _any(root, f"{cifar_inr.PREFIX}_*/net*.pth"):
        return "cifar_inr"
    if _any(root, mnist_inr.GLOB):
        return "mnist_inr"
    if _any(root, "train/model_*.pth") or _any(root, "test/model_*.pth"):
        return "fmnist_inr"
    if _any(root, f"*/*/{wild_park.FILE_NAME}"):
        return "wild_park"
    return None


def detect_format(root: str | Path) -> str:
    """``"mnist_inr"``, ``"fmnist_inr"``, ``"cifar_inr"``, ``"cnn_zoo"`` or ``"wild_park"`` from the files present.

    Raises:
        DataError: ``root`` is not a folder or holds none of the four layouts.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory; give the extracted dataset folder")
    found = _layout_of(root)
    if found is not None:
        return found
    # A common slip: pointing at the folder the archive was extracted into.
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if child.name != "__MACOSX" and _layout_of(child) is not None:
            raise DataError(
                root, f"no weight zoo directly here, but {child} holds one; use that folder"
            )
    raise DataError(
        root,
        "no known weight-zoo layout here: expected weights.npy (Small CNN Zoo), "
        "randinit_smaller_*/net*.pth (CIFAR10-INRs), mnist_png_*/**/*.pth (MNIST-INRs) or "
        "train|test/model_*.pth (FMNIST-INRs) or <trial>/<checkpoint>/checkpoint.pt (CNN Wild Park)",
    )


def detect_file_format(path: str | Path) -> str:
    """The INR format of one ``.pth`` file, from its path (the label lives in the path)."""
    path = Path(path)
    if path.parent.name.startswith(cifar_inr.PREFIX) and path.name.startswith("net"):
        return "cifar_inr"
    if path.parent.parent.name.startswith("mnist_png_"):
        return "mnist_inr"
    if path.parent.name in fmnist_inr.SPLITS and path.name.startswith("model_"):
        return "fmnist_inr"
    if path.name == wild_park.FILE_NAME:
        return "wild_park"
    raise DataError(
        path,
        "cannot tell the format from the path: expected .../randinit_smaller_<c>s/net<i>.pth, "
        ".../mnist_png_<split>_<label>_<id>/<dir>/<file>.pth or .../{train|test}/model_<i>.pth",
    )
