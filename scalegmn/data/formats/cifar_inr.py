"""NFN CIFAR10-INRs (docs/datasets.md §3): ``<root>/randinit_smaller_{c}s/net{idx}.pth``.

``c`` is the class, ``idx`` a global index into CIFAR-10 train + test (0..49999 train,
50000..59999 test). Augmented copies (new SIRENs fit to the same train images) live in
``randinit_smaller_aug{k}_{c}s``. Each file holds ``net.0.linear.*``, ``net.1.linear.*`` and
``net.2.*`` of a 2-32-32-3 SIREN (:func:`scalegmn.weightspace.network.nfn_siren_spec`).
"""

from __future__ import annotations

import re
from pathlib import Path

from scalegmn.data.formats.statedict import (
    check_single,
    state_dict_from_network,
    tensors_from_state_dict,
)
from scalegmn.data.formats.torchfile import load_state_dict, save_state_dict
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, nfn_siren_spec

KEY_PAIRS = (
    ("net.0.linear.weight", "net.0.linear.bias"),
    ("net.1.linear.weight", "net.1.linear.bias"),
    ("net.2.weight", "net.2.bias"),
)
PREFIX = "randinit_smaller"
_FOLDER = re.compile(rf"{PREFIX}(?:_aug(\d+))?_(\d)s")
_FILE = re.compile(r"net(\d+)\.pth")


def folder_name(label: int, aug: int | None = None) -> str:
    """The class folder of ``label``: ``randinit_smaller_{label}s``, or ``randinit_smaller_aug{aug}_{label}s``."""
    return f"{PREFIX}_{int(label)}s" if aug is None else f"{PREFIX}_aug{int(aug)}_{int(label)}s"


def list_files(root: str | Path, aug: int | None = None) -> list[Path]:
    """The base INRs (``aug=None``) or augmented copy ``aug``, sorted by global ``idx``.

    Uses the exact folder pattern ``randinit_smaller_[0-9]s`` (or ``..._aug{k}_[0-9]s``): the
    original ``randinit_smaller_*`` glob also swallowed every aug folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory; point to the extracted 'siren_cifar_wts' folder")
    pattern = f"{PREFIX}_[0-9]s" if aug is None else f"{PREFIX}_aug{int(aug)}_[0-9]s"
    by_idx: dict[int, Path] = {}
    for folder in root.glob(pattern):
        for p in folder.glob("net*.pth"):
            match = _FILE.fullmatch(p.name)
            if match is None or not p.is_file():
                continue
            idx = int(match.group(1))
            if idx in by_idx:
                raise DataError(
                    p, f"index {idx} also exists as {by_idx[idx]}; every net<idx> must be unique"
                )
            by_idx[idx] = p
    return [by_idx[i] for i in sorted(by_idx)]


def list_aug_copies(root: str | Path) -> list[int]:
    """The augmented-copy numbers ``k`` present under ``root``, sorted."""
    found = set()
    for folder in Path(root).glob(f"{PREFIX}_aug*_[0-9]s"):
        match = _FOLDER.fullmatch(folder.name)
        if match and match.group(1) is not None and folder.is_dir():
            found.add(int(match.group(1)))
    return sorted(found)


def parse_path(path: str | Path) -> tuple[int, int, int | None]:
    """``(label, idx, aug)`` from ``.../randinit_smaller[_aug{k}]_{label}s/net{idx}.pth``."""
    path = Path(path)
    folder = _FOLDER.fullmatch(path.parent.name)
    file = _FILE.fullmatch(path.name)
    if folder is None or file is None:
        raise DataError(
            path,
            "expected a path of the form <root>/randinit_smaller[_aug<k>]_<class>s/net<idx>.pth",
        )
    aug = None if folder.group(1) is None else int(folder.group(1))
    return int(folder.group(2)), int(file.group(1)), aug


def read_network(path: str | Path) -> Network:
    """Read one CIFAR10 INR; ``label`` from the folder, ``meta = {"idx", "aug"}``."""
    label, idx, aug = parse_path(path)
    spec = nfn_siren_spec()
    weights, biases = tensors_from_state_dict(path, load_state_dict(path), spec, KEY_PAIRS)
    return Network(
        spec, weights, biases, source=str(path), label=label, meta={"idx": idx, "aug": aug}
    )


def write_network(
    root: str | Path, net: Network, *, label: int, idx: int, aug: int | None = None
) -> Path:
    """Write ``root/randinit_smaller[_aug{aug}]_{label}s/net{idx}.pth`` in NFN key order."""
    if not 0 <= int(label) <= 9:
        raise ValueError(f"label {label}: CIFAR-10 folder names hold one digit 0-9")
    check_single(net, nfn_siren_spec(), "cifar_inr.write_network")
    path = Path(root) / folder_name(label, aug) / f"net{int(idx)}.pth"
    save_state_dict(path, state_dict_from_network(net, KEY_PAIRS))
    return path
