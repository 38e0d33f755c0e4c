"""Build the five offline stand-in zoos in the exact on-disk formats of the real datasets.

Each stand-in is written through :mod:`scalegmn.data.formats` into a dataset root folder named as
the real archive extracts (:func:`default_root_name`), so every loader, split rule and cache
builder runs unchanged on it:

- ``mnist_inr``: DWS SIRENs fitted to real handwritten digits (scikit-learn), plus the digits
  as torchvision ``MNIST/raw`` idx files and the decoys of the real archive.
- ``fmnist_inr``: DWS SIRENs fitted to 10 classes of drawn glyphs, with ``splits.json`` and
  the glyphs as ``FashionMNIST/raw`` idx files.
- ``cifar10_inr``: NFN SIRENs fitted to colour glyphs, with ``aug`` copies (new fits of the
  train images from fresh inits).
- ``cnn_wild_park``: CNNs of varied architecture as Ray checkpoints with Neural Graphs' split
  file (:mod:`scalegmn.data.standins.wild_park`).
- ``cifar10_gs`` / ``svhn_gs``: Small CNN Zoo runs of relu and tanh CNNs with varied
  hyperparameters, 9 checkpoints each, ``weights.npy`` + ``metrics.csv.gz`` + ``layout.csv``
  and NFN's split CSV (with its stray ``0`` line).

A build is deterministic for a seed (same seed -> byte-identical files, with the same torch
build and thread count), atomic (built in ``<root>.tmp``, then
renamed) and writes ``root/standin_report.json`` with its size, timing and quality figures.

Each family of zoos has its own module, imported only when one of its zoos is built
(:data:`~scalegmn.data.standins.sizes.BUILDER_MODULES`), so each ``build_standin`` rule declares
only the code its zoo runs: editing the CNN training code rebuilds no INR zoo.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from scalegmn.atomic import atomic_directory
from scalegmn.data.standins.sizes import (
    BUILDER_MODULES,
    RANDOM_SIZES,
    SIZES,
    STANDINS,
    default_root_name,
    generator_seed,
    resolve_size,
)

logger = logging.getLogger(__name__)

__all__ = ["SIZES", "STANDINS", "build_standin", "default_root_name", "resolve_size"]

REPORT_FILE = "standin_report.json"


def _generator(name: str, seed: int) -> torch.Generator:
    """One generator per (zoo, seed): the zoos of one seed are independent of each other."""
    return torch.Generator().manual_seed(generator_seed(name, seed))


def _builder(name: str, size: str | Mapping[str, int]):
    """The function that builds zoo ``name`` at ``size``, from its family's module."""
    random = isinstance(size, str) and size in RANDOM_SIZES
    module = importlib.import_module(f"scalegmn.data.standins.{BUILDER_MODULES['scale' if random else name]}")
    if random:
        return lambda root, counts, gen: module.build_scale(name, root, counts, gen)
    return module.BUILDERS[name]


def build_standin(
    name: str, root: str | Path, *, size: str | Mapping[str, int] = "default", seed: int = 0
) -> dict[str, Any]:
    """Write stand-in zoo ``name`` into the dataset root folder ``root``; return its report.

    The zoo is built in a temporary folder ``<root>.tmp`` and renamed into place, so
    a killed build leaves no partial ``root`` (and the next build starts clean). An existing
    ``root`` is replaced.

    Args:
        name: one of :data:`STANDINS`.
        root: the dataset root, e.g. ``data/mnist-inrs`` (see :func:`default_root_name`); keep
            ``train`` out of its path (the MNIST loaders split on that substring).
        size: ``"tiny"``, ``"small"``, ``"default"``, ``"scale"`` (the real sizes, random
            weights: data-path throughput only) or a dict of counts overriding ``"default"``
            (keys in :data:`SIZES`).
        seed: the same seed gives byte-identical files.

    Returns:
        The report also written to ``root/standin_report.json``: name, size, counts, seed,
        n_networks, seconds and quality (INR zoos: PSNR, fitting steps, whether the inits
        were independent, per-layer statistics beside the real zoo's; CNN zoos: final
        test-accuracy quantiles, overall and per activation), and for CNN zoos
        ``reference_comparison`` (each hyperparameter's distribution beside the real zoo's).
    """
    counts = resolve_size(name, size)
    root = Path(root)
    if name == "mnist_inr" and "train" in str(root.resolve()):
        # the original MNIST split scripts put every path containing "train" into train
        logger.warning("%s: the path contains 'train'; original MNIST loaders misread it", root)
    logger.info("building stand-in %s (%s) in %s", name, counts, root)
    start = time.monotonic()
    with atomic_directory(root) as tmp:
        result = _builder(name, size)(tmp, counts, _generator(name, seed))
        report = {
            "name": name,
            "size": size if isinstance(size, str) else "custom",
            "counts": counts,
            "seed": int(seed),
            "root_name": root.name,
            **result,
            "seconds": round(time.monotonic() - start, 2),
        }
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    logger.info(
        "stand-in %s: %d networks in %.1f s, quality %s",
        name,
        report["n_networks"],
        report["seconds"],
        report["quality"],
    )
    return report


def build_standin_raw(params: dict, raw_dir: str | Path) -> Path:
    """Build ``raw_dir/<root>`` from one stand-in dataset's acquire params (``name``, ``size``,
    ``seed``; see DatasetConfig.acquire_params), atomically."""
    raw_dir = Path(raw_dir)
    root_name = default_root_name(params["name"])
    with atomic_directory(raw_dir) as tmp:
        build_standin(params["name"], tmp / root_name, size=params["size"], seed=params["seed"])
    return raw_dir / root_name
