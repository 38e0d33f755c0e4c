"""DWS MNIST-INRs (docs/datasets.md §1): ``<root>/mnist_png_{split}_{label}_{image_id}/checkpoints/model_final.pth``.

Each file is a state dict ``seq.{0,1,2}.{weight,bias}`` of a 2-32-32-1 SIREN
(:func:`scalegmn.weightspace.network.dws_siren_spec`). The label and the torchvision image row come from
the grandparent folder's name; there is no label inside the file.
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
from scalegmn.weightspace.network import Network, dws_siren_spec

KEY_PAIRS = (
    ("seq.0.weight", "seq.0.bias"),
    ("seq.1.weight", "seq.1.bias"),
    ("seq.2.weight", "seq.2.bias"),
)
SPLITS = ("training", "testing")
GLOB = "mnist_png_*/**/*.pth"
_FOLDER = re.compile(r"mnist_png_(training|testing)_(\d+)_(\d+)")


def folder_name(split: str, label: int, image_id: int) -> str:
    """The folder of one network: ``mnist_png_{split}_{label}_{image_id}``."""
    return f"mnist_png_{split}_{int(label)}_{int(image_id)}"


def list_files(root: str | Path) -> list[Path]:
    """All INR files under ``root`` (the folder holding ``mnist_png_*``), sorted.

    Only ``mnist_png_*/**/*.pth`` counts, as in the original repositories, so the archive's
    ``__MACOSX/`` junk, ``statistics.pth`` and ``cifar10_png_*`` folders are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory; point to the extracted 'mnist-inrs' folder")
    return sorted(
        p
        for p in root.glob(GLOB)
        # hidden parts: AppleDouble "._*" junk, or the temporary folder of an interrupted write
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def parse_path(path: str | Path) -> tuple[str, int, int]:
    """``(split, label, image_id)`` from the grandparent folder ``mnist_png_{split}_{label}_{id}``."""
    path = Path(path)
    name = path.parent.parent.name
    match = _FOLDER.fullmatch(name)
    if match is None:
        raise DataError(
            path,
            f"folder '{name}' does not match mnist_png_{{training|testing}}_{{label}}_{{image_id}} "
            "(expected <root>/mnist_png_training_3_123/checkpoints/model_final.pth)",
        )
    return match.group(1), int(match.group(2)), int(match.group(3))


def read_network(path: str | Path) -> Network:
    """Read one MNIST INR; ``label`` and ``meta = {"split", "image_id"}`` come from its path."""
    split, label, image_id = parse_path(path)
    spec = dws_siren_spec()
    weights, biases = tensors_from_state_dict(path, load_state_dict(path), spec, KEY_PAIRS)
    return Network(
        spec,
        weights,
        biases,
        source=str(path),
        label=label,
        meta={"split": split, "image_id": image_id},
    )


def write_network(root: str | Path, net: Network, *, split: str, label: int, image_id: int) -> Path:
    """Write ``net`` (float32, keys in the original order) to
    ``root/mnist_png_{split}_{label}_{image_id}/checkpoints/model_final.pth``; return the path."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: use one of {SPLITS}")
    check_single(net, dws_siren_spec(), "mnist_inr.write_network")
    path = Path(root) / folder_name(split, label, image_id) / "checkpoints" / "model_final.pth"
    save_state_dict(path, state_dict_from_network(net, KEY_PAIRS))
    return path
