"""Embedding stores and ``scalegmn embed CHECKPOINT INPUT --out FILE``.

An embedding store is a zarr v3 group (written to a temporary name, then renamed) that any zarr
reader opens: ``embedding`` ``(N, d)`` float32 unit vectors, ``source`` ``(N,)`` the network ids
(the cache store's source column, or the files of a user's zoo), ``y`` ``(N,)`` the label or the
CNN's test accuracy when known; its attributes say what wrote it (``format``, checkpoint,
view, split, settings). The embedding task writes one per split of its view
(``results/train/embedding/<view>/<model>/seed<s>/embeddings/<split>.zarr``, beside the
checkpoint); ``scalegmn embed`` writes one for any store or zoo; ``scalegmn search`` queries them.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from scalegmn import __version__
from scalegmn.atomic import atomic_directory
from scalegmn.data.split_protocol import Split
from scalegmn.errors import DataError
from scalegmn.train.checkpoint import load_checkpoint
from scalegmn.train.contrastive import as_numpy, has_classes, split_embeddings
from scalegmn.train.metrics import ridge_probe
from scalegmn.train.predict import read_input
from scalegmn.train.setup import resolve_device

log = logging.getLogger(__name__)

STORE_FORMAT = "scalegmn-embeddings"
STORE_VERSION = 1


@dataclass(frozen=True)
class EmbeddingSet:
    """What an embedding store holds, in memory."""

    embedding: np.ndarray
    source: list[str]
    y: np.ndarray | None
    attrs: dict[str, Any]

    @property
    def size(self) -> int:
        """Number of networks."""
        return int(self.embedding.shape[0])


def write_store(path: str | Path, embedding: np.ndarray, source: list[str], y: np.ndarray | None,
                attrs: Mapping[str, Any]) -> Path:
    """Write an embedding store at ``path`` (via ``path.tmp``, then rename)."""
    path = Path(path)
    with atomic_directory(path) as tmp:
        root = zarr.open_group(tmp, mode="w")
        root.attrs.update({"format": STORE_FORMAT, "format_version": STORE_VERSION,
                           "package_version": __version__,
                           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "n_networks": int(embedding.shape[0]),
                           "embed_dim": int(embedding.shape[1]) if embedding.ndim == 2 else 0, **attrs})
        root.create_array("embedding", data=np.asarray(embedding, dtype=np.float32),
                          attributes={"description": "(N, d) L2-normalised embedding of each network"})
        ids = root.create_array("source", shape=(len(source),), dtype=str,
                                attributes={"description": "network id: where each network came from"})
        if source:
            ids[...] = np.asarray(source, dtype=str)
        if y is not None:
            root.create_array("y", data=np.asarray(y), attributes={
                "description": "class label (INRs) or the CNN's test accuracy (CNN zoos)"})
    return path


def read_store(path: str | Path) -> EmbeddingSet:
    """Read an embedding store; :class:`DataError` naming the path when it is not one."""
    path = Path(path)
    try:
        root = zarr.open_group(path, mode="r")
        attrs = dict(root.attrs)
        if attrs.get("format") != STORE_FORMAT:
            raise DataError(path, f"not an embedding store (format={attrs.get('format')!r}); write one with "
                                  "`scalegmn embed CHECKPOINT INPUT --out FILE.zarr`")
        emb = root["embedding"][...]
        source = [str(s) for s in root["source"][...]]
        y = root["y"][...] if "y" in root else None
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise DataError(path, f"missing or unreadable embedding store ({' '.join(str(err).split())[:160]})") from None
    return EmbeddingSet(emb, source, y, attrs)


def _labels(split: Split) -> np.ndarray | None:
    return None if split.y is None else split.y.cpu().numpy()


def job_embeddings(model: torch.nn.Module, splits: Mapping[str, Split], batch_size: int,
                   device: torch.device) -> dict[str, torch.Tensor]:
    """The ``(N, d)`` embeddings of every split (float64, CPU)."""
    return {name: split_embeddings(model, s, batch_size, device) for name, s in splits.items()}


def probe_metrics(embeddings: Mapping[str, torch.Tensor], splits: Mapping[str, Split]) -> dict[str, float]:
    """Zero-shot accuracy prediction (a ridge probe, :func:`~scalegmn.train.metrics.ridge_probe`)
    when the splits' targets are accuracies (CNN zoos); empty for class labels."""
    if any(has_classes(s) or s.y is None for s in splits.values()):
        return {}
    data = {name: (embeddings[name].numpy(), splits[name].y.double().cpu().numpy()) for name in ("train", "val", "test")}
    return ridge_probe(data["train"], data["val"], data["test"])


def write_job_stores(out_dir: str | Path, embeddings: Mapping[str, torch.Tensor], splits: Mapping[str, Split],
                     attrs: Mapping[str, Any]) -> list[Path]:
    """One store per split under ``out_dir`` (``<split>.zarr``), written to a temporary folder first."""
    with atomic_directory(out_dir) as tmp:
        for name, z in embeddings.items():
            split = splits[name]
            write_store(Path(tmp) / f"{name}.zarr", as_numpy(z), list(split.sources), _labels(split),
                        {**attrs, "split": name})
    return [Path(out_dir) / f"{name}.zarr" for name in embeddings]


# --- scalegmn embed ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn embed`` arguments to ``parser``."""
    parser.add_argument("checkpoint", type=Path, help="best.pt of an embedding job "
                        "(results/train/embedding/<view>/<model>/seed<s>/best.pt)")
    parser.add_argument("input", type=Path, help="a cached *.zarr split, a weight-zoo folder or one .pth file")
    parser.add_argument("--out", type=Path, required=True, help="embedding store to write (FILE.zarr)")
    parser.add_argument("--batch-size", type=int, default=64, help="networks per forward pass (default 64)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")


def embed_input(checkpoint: Path, source: Path, out: Path, batch_size: int = 64, device: str = "auto") -> EmbeddingSet:
    """Embed the networks of ``source`` with an embedding checkpoint and write the store ``out``."""
    dev = resolve_device(device)
    model, ckpt = load_checkpoint(checkpoint, device=str(dev))
    if ckpt["task"] != "embedding":
        raise DataError(checkpoint, f"is a {ckpt['task']} checkpoint; `scalegmn embed` needs one of the "
                                    "embedding task (results/train/embedding/...)")
    data = read_input(source, ckpt)
    log.info("embedding %d networks from %s with %s", data.size, source, checkpoint)
    z = split_embeddings(model, data, batch_size, dev)
    attrs = {"checkpoint": str(checkpoint), "input": str(source), "view": ckpt.get("view"),
             "settings": ckpt.get("settings")}
    write_store(out, as_numpy(z), list(data.sources), _labels(data), attrs)
    return read_store(out)


def run(args: argparse.Namespace) -> int:
    """``scalegmn embed``: write the embedding store; exit status 0."""
    emb = embed_input(args.checkpoint, args.input, args.out, args.batch_size, args.device)
    print(f"wrote {emb.size} embeddings (d={emb.embedding.shape[1]}) to {args.out}")
    return 0
