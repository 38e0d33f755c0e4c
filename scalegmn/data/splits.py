"""Train/val/test splits as row indices into a dataset's weight table, with the official semantics.

- MNIST-INRs: paths sorted, ``training`` folders -> train, ``testing`` -> test; val = a seeded
  random 5000/60000 fraction of train (the original is unseeded; we fix the seed).
- FMNIST-INRs: the archive's ``splits.json`` (last two path components), else as MNIST.
- CIFAR10-INRs: by global idx, cut points 45000/50000 of 60000 (scaled to the dataset size
  for stand-ins); ``aug[k]`` = the rows of aug copy k whose idx is in train.
- Small CNN Zoo: final checkpoints in the order of the NFN split CSV (its stray first ``0``
  kept, as published), test = second half, first half shuffled with ``random.Random(0)`` and
  cut 80/20 into train/val. Activation filtering happens per view, in the cache stage.

- CNN Wild Park: the ``official_split`` column (Neural Graphs' split JSON, matched at ingest by
  ``<trial>/<checkpoint>/checkpoint.pt``); without one, whole runs (trial dirs) are drawn with
  ``split_seed``: 10% of the runs to test, then 10% to val, as the generator cuts test first.
  Every checkpoint of a run stays in its run's split.

- generic (your own zoo): the manifest's ``split`` column, else a seeded (``split_seed``)
  80/10/10 draw.

The result is JSON: ``{"train": [...], "val": [...], "test": [...], "aug": {"k": [...]},
"method": str, "counts": {...}}``.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np

from scalegmn.atomic import atomic_write
from scalegmn.data.formats.cnn_zoo import FINAL_STEP
from scalegmn.data.network_set import NetworkSet, read_network_set
from scalegmn.errors import DataError

logger = logging.getLogger(__name__)

MNIST_VAL_FRACTION = 5000 / 60000
CIFAR_CUTS = (45000 / 60000, 50000 / 60000)


def _rows(a) -> list[int]:
    return [int(x) for x in a]


def mnist_splits(table: NetworkSet, seed: int) -> dict:
    """MNIST-INR splits: sorted paths, ``training`` -> train, ``testing`` -> test, seeded val."""
    order = np.argsort(table.columns["source"], kind="stable")
    split = table.columns["split"]
    train = order[np.isin(split[order], ("training", "train"))]
    test = order[np.isin(split[order], ("testing", "test"))]
    n_val = int(round(len(train) * MNIST_VAL_FRACTION))
    n_val = min(max(n_val, 1), len(train) - 1) if len(train) > 1 else 0
    rng = np.random.default_rng(seed)
    val = np.sort(rng.choice(train, size=n_val, replace=False)) if n_val else np.array([], int)
    train = np.setdiff1d(train, val)
    return {"train": _rows(train), "val": _rows(val), "test": _rows(test),
            "method": f"sorted paths; seeded ({seed}) val = {MNIST_VAL_FRACTION:.4f} of training"}


def fmnist_splits(table: NetworkSet, seed: int) -> dict:
    """FMNIST-INR splits: the archive's ``splits.json``, else :func:`mnist_splits`."""
    official = table.attrs.get("official_splits")
    if not official:
        logger.warning("no splits.json in the FMNIST root: using the MNIST procedure")
        return mnist_splits(table, seed)
    where = {p: i for i, p in enumerate(table.columns["relpath"])}
    out, missing = {}, 0
    for name in ("train", "val", "test"):
        rows = [where[p] for p in official.get(name, []) if p in where]
        missing += len(official.get(name, [])) - len(rows)
        out[name] = sorted(rows)
    if missing:
        logger.warning("%d entries of splits.json have no ingested network (quarantined?)", missing)
    out["method"] = "official splits.json"
    return out


def cifar_splits(table: NetworkSet) -> dict:
    """CIFAR10-INR splits by global idx (45000/50000 of 60000), with the train rows of each aug copy."""
    idx, aug = table.columns["idx"], table.columns["aug"]
    base = np.flatnonzero(aug == -1)
    n = int(idx[base].max()) + 1 if base.size else 0
    if n >= 60000:
        cut1, cut2 = 45000, 50000
    else:
        cut1, cut2 = int(round(n * CIFAR_CUTS[0])), int(round(n * CIFAR_CUTS[1]))
    base = base[np.argsort(idx[base], kind="stable")]
    out = {
        "train": _rows(base[idx[base] < cut1]),
        "val": _rows(base[(idx[base] >= cut1) & (idx[base] < cut2)]),
        "test": _rows(base[idx[base] >= cut2]),
        "aug": {},
        "method": f"by idx: train < {cut1} <= val < {cut2} <= test",
    }
    for k in sorted(set(aug[aug >= 0].tolist())):
        rows = np.flatnonzero((aug == k) & (idx < cut1))
        out["aug"][str(k)] = _rows(rows[np.argsort(idx[rows], kind="stable")])
    return out


def zoo_splits(table: NetworkSet) -> dict:
    """Small CNN Zoo splits: the NFN split CSV order, test = second half, 80/20 train/val.

    The split CSV lists final checkpoints. A table of every checkpoint (``checkpoints: all``)
    puts each run's checkpoints, by step, where its final checkpoint goes.
    """
    perm = table.extras["split_perm"]
    zoo_row = table.columns["zoo_row"]
    all_checkpoints = "run" in table.columns
    final = np.flatnonzero(table.columns["step"] == FINAL_STEP) if all_checkpoints else np.arange(len(zoo_row))
    where = {int(zoo_row[i]): int(i) for i in final}
    # Reorder by the split CSV, keep final checkpoints (the rows of the table), duplicates kept.
    order = [where[int(r)] for r in perm if int(r) in where]
    half = len(order) // 2
    first, test = list(order[:half]), order[half:]
    random.Random(0).shuffle(first)
    n_train = int(len(first) * 0.8)
    out = {"train": first[:n_train], "val": first[n_train:], "test": list(test)}
    method = "NFN split CSV order; test = second half; Random(0) 80/20 train/val"
    if all_checkpoints:
        run = table.columns["run"].astype(str)
        by_step = np.lexsort((table.columns["step"], run))
        members: dict[str, list[int]] = {}
        for i in by_step.tolist():
            members.setdefault(run[i], []).append(i)
        placed = {run[i] for i in order}
        out = {name: [m for i in rows for m in members[run[i]]] for name, rows in out.items()}
        lost = sum(len(v) for k, v in members.items() if k not in placed)
        if lost:
            logger.warning("%d checkpoints belong to runs whose final checkpoint is in no split: left out", lost)
        method += "; every checkpoint of a run in its final checkpoint's split"
    return {**{name: _rows(np.asarray(rows, dtype=np.int64)) for name, rows in out.items()}, "method": method}


WILD_PARK_FRACTIONS = (0.1, 0.1)  # val, test: fractions of the runs


def split_runs(runs, fractions: tuple[float, float], seed: int) -> dict[str, str]:
    """Run -> split: whole runs per split, test first then val (as Neural Graphs' generator
    cuts them), from a seeded permutation of the sorted run names; ``fractions`` = (val, test)."""
    names = sorted(set(runs))
    order = np.random.default_rng(seed).permutation(len(names)).tolist()
    n_test = max(1, round(len(names) * fractions[1])) if len(names) >= 3 else 0
    n_val = max(1, round(len(names) * fractions[0])) if len(names) >= 3 else 0
    return {names[i]: "test" if pos < n_test else "val" if pos < n_test + n_val else "train"
            for pos, i in enumerate(order)}


def wild_park_splits(table: NetworkSet, seed: int) -> dict:
    """CNN Wild Park: the split file's membership, else a seeded draw of whole runs."""
    official = table.columns["official_split"].astype(str)
    if (official != "").any():
        out = {name: _rows(np.flatnonzero(official == name)) for name in ("train", "val", "test")}
        rest = int((official == "").sum())
        if rest:
            logger.warning("%d checkpoints are in no split of the split file: left out", rest)
        return out | {"method": f"split file {table.attrs.get('split_file')}"}
    run = table.columns["run"].astype(str)
    by_run = split_runs(run.tolist(), WILD_PARK_FRACTIONS, seed)
    split = np.array([by_run[r] for r in run])
    return {name: _rows(np.flatnonzero(split == name)) for name in ("train", "val", "test")} | {
        "method": f"seeded ({seed}) draw of whole runs: test {WILD_PARK_FRACTIONS[1]:.0%}, "
                  f"val {WILD_PARK_FRACTIONS[0]:.0%} of the runs"}


GENERIC_FRACTIONS = (0.8, 0.1)  # train, val; the rest is test


def generic_splits(table: NetworkSet, seed: int) -> dict:
    """Your own zoo: the manifest's ``split`` column, else a seeded 80/10/10 draw."""
    split = table.columns["split"].astype(str)
    if (split != "").all():
        return {name: _rows(np.flatnonzero(split == name)) for name in ("train", "val", "test")} | {
            "method": "manifest.csv split column"}
    order = np.random.default_rng(seed).permutation(len(split))
    n_train = int(round(len(order) * GENERIC_FRACTIONS[0]))
    n_val = int(round(len(order) * GENERIC_FRACTIONS[1]))
    return {"train": _rows(np.sort(order[:n_train])), "val": _rows(np.sort(order[n_train:n_train + n_val])),
            "test": _rows(np.sort(order[n_train + n_val:])), "method": f"seeded ({seed}) 80/10/10 draw"}


def make_splits(table: NetworkSet, *, seed: int = 0) -> dict:
    """Splits of a weight table (format taken from ``table.attrs['format']``)."""
    fmt = table.attrs["format"]
    if fmt == "mnist_inr":
        out = mnist_splits(table, seed)
    elif fmt == "fmnist_inr":
        out = fmnist_splits(table, seed)
    elif fmt == "cifar_inr":
        out = cifar_splits(table)
    elif fmt == "cnn_zoo":
        out = zoo_splits(table)
    elif fmt == "generic":
        out = generic_splits(table, seed)
    elif fmt == "wild_park":
        out = wild_park_splits(table, seed)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    out.setdefault("aug", {})
    out["counts"] = {k: len(out[k]) for k in ("train", "val", "test")}
    out["counts"]["aug"] = {k: len(v) for k, v in out["aug"].items()}
    out["dataset"] = table.attrs.get("dataset")
    logger.info("splits of %s: %s (%s)", out["dataset"], out["counts"], out["method"])
    return out


def write_splits(path: str | Path, splits: dict) -> None:
    """Write ``splits`` as sorted-key JSON to ``path`` (atomically)."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(splits, sort_keys=True))


def read_splits(path: str | Path) -> dict:
    """The split JSON written by :func:`write_splits` (DataError naming an unreadable file)."""
    try:
        splits = json.loads(Path(path).read_text())
        if not all(isinstance(splits.get(k), list) for k in ("train", "val", "test")):
            raise ValueError("no train/val/test lists")
    except (OSError, ValueError, AttributeError) as err:
        raise DataError(path, f"not a readable split file ({err}); delete it and rerun the splits stage") from None
    return splits


def make_splits_file(table_path: str | Path, out: str | Path, *, seed: int = 0) -> dict:
    """The splits stage: read the ingested table's columns (not its weights), write its split JSON."""
    splits = make_splits(read_network_set(table_path, arrays=False), seed=seed)
    write_splits(out, splits)
    return splits
