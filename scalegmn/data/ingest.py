"""Read a dataset's network files ONCE into one HDF5 weight table (scalegmn.data.network_set).

Per format (readers in scalegmn.data.formats):

- ``mnist_inr``: ``mnist_png_*/**/*.pth``; columns ``split`` (training/testing), ``image_id``;
  the original digits (``MNIST/raw`` idx files, when present) go to ``extras/images`` aligned
  with the rows, for INR editing.
- ``fmnist_inr``: ``train|test/model_<i>.pth``; columns ``split``, ``image_id``, ``relpath``;
  the archive's ``splits.json`` goes to the attribute ``official_splits``.
- ``cifar_inr``: base ``randinit_smaller_<c>s`` and every ``randinit_smaller_aug<k>_<c>s`` copy;
  columns ``idx`` and ``aug`` (-1 for the base networks).
- ``cnn_zoo``: ``weights.npy`` read in blocks of rows from the file (not memory-mapped: read
  pages of a map would stay in the peak RSS; :class:`~scalegmn.data.formats.cnn_zoo.WeightRows`); the final checkpoints
  (``step == 86``), what the splits use, or with ``checkpoints: all`` every checkpoint (column
  ``run``, the metrics' ``modeldir``); columns ``zoo_row`` (row in weights.npy), ``step``,
  ``activation``; target = ``test_accuracy``; the NFN split CSV goes to ``extras/split_perm``.
- ``wild_park`` (CNN Wild Park): every ``<trial>/<checkpoint>/checkpoint.pt``, into the flat
  layout (many architectures, :class:`~scalegmn.data.network_set.FlatNetworkSetWriter`);
  target = ``last_result["test/acc"]``; columns ``run`` (trial dir), ``step``, ``relpath``
  and ``official_split`` (train/val/test from Neural Graphs' split JSON in the root, or empty).
- ``generic`` (your own zoo): the files ``manifest.csv`` lists, in its order; columns ``split``
  (train/val/test or empty); label or target from the manifest; attrs ``task_kind``.

Bad items (corrupt file, wrong shape, NaN): with ``on_bad_file="error"`` the first raises a
one-line DataError naming the file; with ``"skip"`` each is listed in the quarantine TSV
(``path<TAB>reason``) and the rest is ingested.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from scalegmn.atomic import atomic_write
from scalegmn.data.formats import cifar_inr, cnn_zoo, fmnist_inr, generic, mnist_inr, wild_park
from scalegmn.data.formats.mnist_images import read_mnist_images
from scalegmn.data.network_set import FlatNetworkSetWriter, NetworkSetWriter
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, cnn_zoo_spec, stack

logger = logging.getLogger(__name__)

_BLOCK = 4096


class Quarantine:
    """Collects bad items under the ``skip`` policy; raises at once under ``error``."""

    def __init__(self, policy: str):
        if policy not in ("error", "skip"):
            raise ValueError(f"on_bad_file {policy!r}: use 'error' or 'skip'")
        self.policy = policy
        self.items: list[tuple[str, str]] = []

    def bad(self, err: DataError) -> None:
        """Record a bad item (``skip``: logged as quarantined) or raise ``err`` (``error``)."""
        if self.policy == "error":
            raise err
        logger.warning("quarantined %s", err)
        self.items.append((err.path, err.problem))

    def write(self, path: str | Path) -> None:
        """Write ``quarantine.tsv``: a tab-separated ``path``, ``reason`` header, one line per bad item."""
        lines = ["path\treason"] + [f"{p}\t{' '.join(r.split())}" for p, r in self.items]
        with atomic_write(path) as tmp:
            tmp.write_text("\n".join(lines) + "\n")


def _read_block(files: list[Path], reader: Callable[[Path], Network], quarantine: Quarantine) -> list[Network]:
    nets = []
    for path in files:
        try:
            net = reader(path)
            where = net.non_finite()
            if where is not None:
                raise DataError(path, f"{where} holds NaN or Inf")
            nets.append(net)
        except DataError as err:
            quarantine.bad(err)
    return nets


def _ingest_files(
    files: list[Path], reader: Callable[[Path], Network], columns: Callable[[Network], dict],
    quarantine: Quarantine, out: Path, root: Path,
) -> tuple[NetworkSetWriter, dict[str, list]]:
    """Read files in blocks, appending each block to the table; returns the (open) writer and
    every column's values (small: used for splits and images)."""
    if not files:
        raise DataError(root, "no network files found; is this the dataset root?")
    writer, seen, t0 = None, {}, time.monotonic()
    try:
        for lo in range(0, len(files), _BLOCK):
            nets = _read_block(files[lo : lo + _BLOCK], reader, quarantine)
            if nets:
                batch = stack(nets)
                if writer is None:
                    writer = NetworkSetWriter(out, batch.spec)
                cols = {
                    "label": np.array([-1 if x.label is None else x.label for x in nets], dtype=np.int64),
                    "target": np.array([np.nan if x.target is None else x.target for x in nets], dtype=np.float32),
                    "source": np.array([x.source for x in nets]),
                    "activation": np.array([batch.spec.hidden_activation] * len(nets)),
                }
                for x in nets:
                    for k, v in columns(x).items():
                        seen.setdefault(k, []).append(v)
                cols.update({k: np.asarray(v[-len(nets):]) for k, v in seen.items()})
                writer.append(batch.weights, batch.biases, cols)
            done = min(lo + _BLOCK, len(files))
            logger.info("read %d/%d files (%.0f files/s, %d bad)", done, len(files),
                        done / max(time.monotonic() - t0, 1e-9), len(quarantine.items))
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())
        raise
    if writer is None:
        raise DataError(root, "no readable network files (all were bad)")
    return writer, seen


def _images_for(root: Path, dataset: str, splits: list[str], ids: list[int]) -> np.ndarray | None:
    cache: dict[str, np.ndarray] = {}
    try:
        for s in set(splits):
            cache[s] = read_mnist_images(root, s, dataset)
        return np.stack([cache[s][i] for s, i in zip(splits, ids, strict=True)]).astype(np.uint8)
    except (DataError, FileNotFoundError, IndexError, ValueError) as err:
        logger.warning("no source images for editing (%s)", " ".join(str(err).split()))
        return None


def ingest_mnist(root: Path, quarantine: Quarantine, out: Path) -> tuple[NetworkSetWriter, dict, dict]:
    """Ingest an MNIST-INR root; extras hold the source digits when found.

    Returns:
        ``(writer, extras, attrs)``, as every ingester of :data:`INGESTERS`.
    """
    writer, seen = _ingest_files(
        mnist_inr.list_files(root), mnist_inr.read_network,
        lambda x: {"split": x.meta["split"], "image_id": int(x.meta["image_id"])}, quarantine, out, root)
    extras = {}
    images = _images_for(root, "MNIST", seen["split"], seen["image_id"])
    if images is not None:
        extras["images"] = images
    return writer, extras, {}


def ingest_fmnist(root: Path, quarantine: Quarantine, out: Path) -> tuple[NetworkSetWriter, dict, dict]:
    """Ingest an FMNIST-INR root; attrs hold the official splits, extras the source images.

    Returns:
        ``(writer, extras, attrs)``, as every ingester of :data:`INGESTERS`.
    """
    writer, seen = _ingest_files(
        fmnist_inr.list_files(root), fmnist_inr.read_network,
        lambda x: {"split": x.meta["split"], "image_id": int(x.meta["index"]),
                   "relpath": f"{x.meta['split']}/model_{int(x.meta['index'])}.pth"}, quarantine, out, root)
    attrs, extras = {}, {}
    if (root / "splits.json").exists():
        attrs["official_splits"] = fmnist_inr.read_splits(root)
    splits = ["training" if s == "train" else "testing" for s in seen["split"]]
    images = _images_for(root, "FashionMNIST", splits, seen["image_id"])
    if images is not None:
        extras["images"] = images
    return writer, extras, attrs


def ingest_cifar(root: Path, quarantine: Quarantine, out: Path) -> tuple[NetworkSetWriter, dict, dict]:
    """Ingest a CIFAR10-INR root, the augmented copies included.

    Returns:
        ``(writer, extras, attrs)``; attrs name the aug copies.
    """
    files = list(cifar_inr.list_files(root))
    copies = cifar_inr.list_aug_copies(root)
    logger.info("%d base files and %d aug copies", len(files), len(copies))
    for k in copies:
        files += cifar_inr.list_files(root, aug=k)
    writer, _ = _ingest_files(
        files, cifar_inr.read_network,
        lambda x: {"idx": int(x.meta["idx"]), "aug": -1 if x.meta["aug"] is None else int(x.meta["aug"])},
        quarantine, out, root)
    return writer, {}, {"aug_copies": copies}


def ingest_zoo(root: Path, quarantine: Quarantine, out: Path, checkpoints: str = "final",
               ) -> tuple[NetworkSetWriter, dict, dict]:
    """Ingest a Small CNN Zoo root: the runs' final step (86), or with ``checkpoints="all"``
    every checkpoint of every run, with test accuracy, step and (all) run.

    With ``all`` a network's id says its run and step (``weights.npy#<row>?run=<modeldir>&step=<s>``,
    what :mod:`scalegmn.data.siblings` reads) and the metrics file must have ``modeldir``.

    Returns:
        ``(writer, extras, attrs)``; extras hold the NFN split permutation.
    """
    layout = cnn_zoo.read_layout(root)
    metrics = cnn_zoo.read_metrics(root)
    weights = cnn_zoo.open_weight_rows(root, layout=layout, metrics=metrics)  # read block by block
    step = metrics["step"].to_numpy().astype(np.int64)
    keep = np.flatnonzero(step == cnn_zoo.FINAL_STEP)
    if keep.size == 0:
        raise DataError(root / cnn_zoo.METRICS_FILE, f"no rows with step == {cnn_zoo.FINAL_STEP}")
    run = None
    if checkpoints == "all":
        if "modeldir" not in metrics.columns:
            raise DataError(root / cnn_zoo.METRICS_FILE, "no 'modeldir' column: the runs of the checkpoints are "
                            "unknown; use checkpoints: final")
        run = metrics["modeldir"].astype(str).to_numpy()
        keep = np.arange(len(metrics))
    acts = metrics["config.activation"].astype(str).str.lower().to_numpy()
    acc = metrics["test_accuracy"].to_numpy(dtype=np.float64)
    split_csvs = sorted(root.glob("*_split.csv"))
    if not split_csvs:
        raise DataError(root, "no <name>_split.csv (the NFN split CSV) in the zoo root; add it "
                              "(download.urls) or use source: standin")
    perm = cnn_zoo.read_split_csv(split_csvs[0])
    t0 = time.monotonic()
    writer = NetworkSetWriter(out, cnn_zoo_spec("relu"))
    try:
        for lo in range(0, keep.size, _BLOCK):
            rows = keep[lo : lo + _BLOCK]
            net = cnn_zoo.rows_to_network(weights[rows], layout, "relu")  # reads this block only
            finite = torch.stack([torch.isfinite(t.flatten(1)).all(1) for t in (*net.weights, *net.biases)]).all(0)
            ok = finite.numpy() & np.isfinite(acc[rows]) & np.isin(acts[rows], ("relu", "tanh"))
            for r in rows[~ok]:
                reason = ("weights hold NaN or Inf" if not np.isfinite(weights[r]).all()
                          else f"bad test_accuracy {acc[r]!r} or activation {acts[r]!r}")
                quarantine.bad(DataError(f"{root / cnn_zoo.WEIGHTS_FILE}#{r}", reason))
            sel, good = torch.from_numpy(ok), rows[ok]
            ids = [f"{root / cnn_zoo.WEIGHTS_FILE}#{r}" for r in good]
            columns = {"label": np.full(good.size, -1, dtype=np.int64), "target": acc[good].astype(np.float32),
                       "source": np.array(ids), "activation": acts[good], "zoo_row": good.astype(np.int64),
                       "step": step[good]}
            if run is not None:
                columns["source"] = np.array([f"{i}?run={run[r]}&step={step[r]}" for i, r in zip(ids, good, strict=True)])
                columns["run"] = run[good]
            writer.append([t[sel] for t in net.weights], [t[sel] for t in net.biases], columns)
            done = min(lo + _BLOCK, keep.size)
            logger.info("read %d/%d %s checkpoints (%.0f networks/s)", done, keep.size, checkpoints,
                        done / max(time.monotonic() - t0, 1e-9))
    except BaseException:
        writer.__exit__(*sys.exc_info())
        raise
    attrs = {"zoo_rows_total": int(weights.shape[0]), "zoo_step": cnn_zoo.FINAL_STEP, "split_csv": split_csvs[0].name,
             "zoo_checkpoints": checkpoints}
    return writer, {"split_perm": perm.astype(np.int64)}, attrs


def ingest_generic(root: Path, quarantine: Quarantine, out: Path) -> tuple[NetworkSetWriter, dict, dict]:
    """Ingest your own zoo: the files ``manifest.csv`` lists (docs/datasets.md §12).

    Returns:
        ``(writer, extras, attrs)``; attrs hold ``task_kind`` (classification with labels,
        regression with targets).
    """
    entries = generic.read_manifest(root)
    by_file = {e.file: e for e in entries}
    writer, _ = _ingest_files(
        [e.file for e in entries], lambda p: generic.read_network(by_file[p]),
        lambda x: {"split": x.meta["split"]}, quarantine, out, root)
    task = "classification" if entries[0].label is not None else "regression"
    return writer, {}, {"task_kind": task}


def _official_split(root: Path) -> tuple[dict[str, str], str | None]:
    """``split key -> split`` from the split JSON in (or next to) ``root``, and its name."""
    for candidate in (root / wild_park.SPLITS_FILE, root.parent / wild_park.SPLITS_FILE):
        if candidate.is_file():
            entries = wild_park.read_splits(candidate)
            return {wild_park.split_key(p): name for name, e in entries.items() for p in e.path}, candidate.name
    return {}, None


def ingest_wild_park(root: Path, quarantine: Quarantine, out: Path) -> tuple[FlatNetworkSetWriter, dict, dict]:
    """Ingest a CNN Wild Park root (every checkpoint of every run) into the flat layout.

    Returns:
        ``(writer, extras, attrs)``; attrs name the split file and count its entries without a file.
    """
    files = wild_park.list_files(root)
    if not files:
        raise DataError(root, "no <trial>/<checkpoint>/checkpoint.pt files; is this the CNN Wild Park root?")
    official, split_file = _official_split(root)
    if split_file is None:
        logger.warning("no %s in %s: runs will be split by a seeded draw", wild_park.SPLITS_FILE, root)
    writer, t0, matched = FlatNetworkSetWriter(out), time.monotonic(), 0
    try:
        for lo in range(0, len(files), _BLOCK):
            nets = _read_block(files[lo: lo + _BLOCK], wild_park.read_network, quarantine)
            keys = [n.meta["relpath"] for n in nets]
            split = [official.get(k, "") for k in keys]
            matched += sum(1 for s in split if s)
            writer.append(nets, {
                "label": np.full(len(nets), -1, dtype=np.int64),
                "target": np.array([n.target for n in nets], dtype=np.float32),
                "source": np.array([n.source for n in nets], dtype=str),
                "activation": np.array([",".join(n.spec.activations[:-1]) for n in nets], dtype=str),
                "run": np.array([n.meta["run"] for n in nets], dtype=str),
                "step": np.array([n.meta["step"] for n in nets], dtype=np.int64),
                "relpath": np.array(keys, dtype=str),
                "official_split": np.array(split, dtype=str),
            })
            done = min(lo + _BLOCK, len(files))
            logger.info("read %d/%d checkpoints (%.0f files/s, %d architectures, %d bad)", done, len(files),
                        done / max(time.monotonic() - t0, 1e-9), len(writer.specs), len(quarantine.items))
    except BaseException:
        writer.__exit__(*sys.exc_info())
        raise
    if writer.n == 0:
        writer.__exit__(None, None, None)
        raise DataError(root, "no readable checkpoints (all were bad)")
    attrs = {"split_file": split_file, "split_file_entries": len(official),
             "split_file_unmatched": len(official) - matched, "n_architectures": len(writer.specs)}
    if official and len(official) != matched:
        logger.warning("%d entries of %s have no ingested checkpoint (missing or quarantined)",
                       len(official) - matched, split_file)
    return writer, {}, attrs


INGESTERS = {"mnist_inr": ingest_mnist, "fmnist_inr": ingest_fmnist,
             "cifar_inr": ingest_cifar, "cnn_zoo": ingest_zoo, "generic": ingest_generic,
             "wild_park": ingest_wild_park}


def ingest_dataset(
    root: str | Path, out: str | Path, quarantine_path: str | Path, *,
    dataset: str, fmt: str, on_bad_file: str = "error", checkpoints: str = "final",
) -> dict:
    """Ingest the dataset root ``root`` (format ``fmt``) into the HDF5 table ``out``.

    Networks are read and written in blocks of 4096, so a real zoo never sits in memory at once.
    Always writes ``quarantine_path`` (header only when nothing was skipped). Returns a summary.
    ``checkpoints`` (``final`` | ``all``) is the Small CNN Zoo's choice (:func:`ingest_zoo`).
    """
    if checkpoints != "final" and fmt != "cnn_zoo":
        raise ValueError(f"checkpoints={checkpoints!r}: only the Small CNN Zoo chooses checkpoints")
    root, out = Path(root), Path(out)
    if not root.exists():
        if root.is_symlink():  # source: local, and the user's folder has gone since it was linked
            raise DataError(os.readlink(root), f"the local dataset folder is gone (moved or deleted?); "
                                               f"fix datasets.{dataset}.local.path or put it back, then rerun")
        raise DataError(root, f"dataset root not found; delete {root.parent} and rerun, so that the "
                              "acquire stage rebuilds it")
    quarantine = Quarantine(on_bad_file)
    t0 = time.monotonic()
    ingester = functools.partial(ingest_zoo, checkpoints=checkpoints) if fmt == "cnn_zoo" else INGESTERS[fmt]
    writer, extras, attrs = ingester(root, quarantine, out)
    with writer:
        attrs.update(dataset=dataset, format=fmt, on_bad_file=on_bad_file, quarantined=len(quarantine.items))
        writer.finish(extras, attrs)
    quarantine.write(quarantine_path)
    summary = {"dataset": dataset, "n_networks": writer.n, "quarantined": len(quarantine.items),
               "seconds": round(time.monotonic() - t0, 2)}
    if isinstance(writer, FlatNetworkSetWriter):
        summary["n_architectures"] = len(writer.specs)
    else:
        summary["spec"] = writer.spec.to_dict()
    logger.info("ingested %d networks of %s in %.1f s -> %s", writer.n, dataset, summary["seconds"], out)
    return summary
