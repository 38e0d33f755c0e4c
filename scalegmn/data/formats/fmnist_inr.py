"""FMNIST-INRs (docs/datasets.md §2): ``<root>/{train,test}/model_{i}.pth`` plus ``<root>/splits.json``.

Each file holds the six ``seq.*`` tensors of a 2-32-32-1 DWS SIREN
(:func:`scalegmn.weightspace.network.dws_siren_spec`) and a ``label`` key (a Python int). ``i`` indexes
torchvision's FashionMNIST train or test set. ``splits.json`` is
``{"train": [path, ...], "val": [...], "test": [...]}`` whose paths carry an arbitrary prefix;
only their last two components (``train/model_12.pth``) are meaningful.
"""

from __future__ import annotations

import json
import numbers
import re
from pathlib import Path

import torch

from scalegmn.atomic import atomic_write
from scalegmn.data.formats.mnist_inr import KEY_PAIRS  # the same DWS SIREN keys seq.{0,1,2}.*
from scalegmn.data.formats.statedict import (
    check_single,
    state_dict_from_network,
    tensors_from_state_dict,
)
from scalegmn.data.formats.torchfile import load_state_dict, save_state_dict
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, dws_siren_spec

SPLITS = ("train", "test")
SPLIT_NAMES = ("train", "val", "test")
SPLITS_FILE = "splits.json"
_FILE = re.compile(r"model_(\d+)\.pth")


def _files_in(folder: Path) -> list[Path]:
    found = []
    for p in folder.glob("model_*.pth"):
        match = _FILE.fullmatch(p.name)
        if match and p.is_file():
            found.append((int(match.group(1)), p))
    return [p for _, p in sorted(found)]


def list_files(root: str | Path) -> list[Path]:
    """``train/model_*.pth`` then ``test/model_*.pth``, each sorted by their index ``i``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory; point to the extracted 'fmnist_inrs' folder")
    return [p for split in SPLITS for p in _files_in(root / split)]


def parse_path(path: str | Path) -> tuple[str, int]:
    """``(split, index)`` from ``.../{train|test}/model_{index}.pth``."""
    path = Path(path)
    match = _FILE.fullmatch(path.name)
    if match is None or path.parent.name not in SPLITS:
        raise DataError(path, "expected a path of the form <root>/{train|test}/model_<index>.pth")
    return path.parent.name, int(match.group(1))


def _label(path: Path, value: object) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        return int(value.item())
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise DataError(path, f"key 'label' holds {value!r}, expected an integer class label")


def read_network(path: str | Path) -> Network:
    """Read one FMNIST INR; ``label`` from its ``label`` key, ``meta = {"split", "index"}``."""
    path = Path(path)
    split, index = parse_path(path)
    sd = load_state_dict(path)
    if "label" not in sd:
        raise DataError(path, "missing key 'label' (FMNIST INR files carry their class label)")
    spec = dws_siren_spec()
    weights, biases = tensors_from_state_dict(path, sd, spec, KEY_PAIRS, extra_keys=("label",))
    return Network(
        spec,
        weights,
        biases,
        source=str(path),
        label=_label(path, sd["label"]),
        meta={"split": split, "index": index},
    )


def write_network(root: str | Path, net: Network, *, split: str, index: int, label: int) -> Path:
    """Write ``root/{split}/model_{index}.pth`` (six ``seq.*`` tensors + ``label`` int)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: use one of {SPLITS}")
    check_single(net, dws_siren_spec(), "fmnist_inr.write_network")
    sd: dict[str, object] = dict(state_dict_from_network(net, KEY_PAIRS))
    sd["label"] = int(label)
    path = Path(root) / split / f"model_{int(index)}.pth"
    save_state_dict(path, sd)
    return path


def _tail(entry: str) -> str:
    return "/".join(entry.replace("\\", "/").split("/")[-2:])


def read_splits(root: str | Path) -> dict[str, list[str]]:
    """``root/splits.json`` as ``{"train"|"val"|"test": ["train/model_12.pth", ...]}``.

    Only the last two components of each stored path are kept (the prefix is arbitrary).
    """
    path = Path(root) / SPLITS_FILE
    if not path.is_file():
        raise DataError(path, "file not found; the FMNIST archive ships splits.json in its root")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object with keys {list(SPLIT_NAMES)}")
    out: dict[str, list[str]] = {}
    for name in SPLIT_NAMES:
        entries = data.get(name)
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise DataError(path, f"key '{name}' must be a list of path strings")
        tails = [_tail(e) for e in entries]
        bad = [
            t
            for t in tails
            if not _FILE.fullmatch(t.split("/")[-1]) or t.split("/")[0] not in SPLITS
        ]
        if bad:
            raise DataError(
                path,
                f"split '{name}' entry '{bad[0]}' is not of the form {{train|test}}/model_<i>.pth",
            )
        out[name] = tails
    return out


def write_splits(
    root: str | Path, splits: dict[str, list[str]], *, prefix: str = "fmnist_inrs"
) -> Path:
    """Write ``root/splits.json`` with every entry as ``{prefix}/{split}/model_{i}.pth``.

    Entries may be given as ``"train/model_3.pth"`` or with any prefix; the real file stores
    arbitrary prefixes, which readers must strip.
    """
    missing = [name for name in SPLIT_NAMES if name not in splits]
    if missing:
        raise ValueError(f"splits needs keys {list(SPLIT_NAMES)}; missing {missing}")
    data = {
        name: [f"{prefix}/{_tail(str(e))}" if prefix else _tail(str(e)) for e in entries]
        for name, entries in splits.items()
    }
    path = Path(root) / SPLITS_FILE
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data))
    return path
