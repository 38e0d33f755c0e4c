"""Data stages of the pipeline, in the order the rules of ``rules/data.smk`` run them.

- :mod:`~scalegmn.data.config`: the DATA section of ``config.yaml``, validated at parse time;
- :mod:`~scalegmn.data.acquire`: download (verified), extract, or link a dataset into ``raw/``
  (rules ``download_dataset``, ``extract_dataset``); :mod:`~scalegmn.data.standins` builds
  offline stand-ins in the real formats instead (rule ``build_standin``);
- :mod:`~scalegmn.data.formats`: readers and writers of every weight-zoo file format;
- :mod:`~scalegmn.data.ingest`: read every network file once into one weight table (rule
  ``ingest_dataset``), stored by :mod:`~scalegmn.data.network_set`;
- :mod:`~scalegmn.data.splits`: train/val/test row indices with the official semantics (rule
  ``make_splits``);
- :mod:`~scalegmn.data.canonicalize`: canonicalization with function preservation checked
  (rule ``canonicalize_dataset``);
- :mod:`~scalegmn.data.augment`: train-only augmentation under random symmetries;
- :mod:`~scalegmn.data.cache`: the zarr stores of each view, and the loader training reads
  them with (rule ``build_cache``);
- :mod:`~scalegmn.data.split_protocol`: the ``Split`` protocol every consumer of networks reads
  (training, prediction, tests), and ``MemorySplit`` for networks already in memory;
- :mod:`~scalegmn.data.siblings`: which networks share a training run or an image (the embedding
  task's sibling positives and retrieval);
- :mod:`~scalegmn.data.stream`: a store too large for memory (or the GPU) streamed block by
  block by a background reader (pinned memory on CUDA).

- :mod:`~scalegmn.data.api`: the Python data API, ``load_split``, ``to_pyg`` and ``weights``
  (docs/usage.md, "Data API").

The Snakefile imports ``config`` and ``acquire`` when it is parsed, so this ``__init__`` imports
no submodule (several import torch); ``scalegmn.data.load_split``, ``to_pyg`` and ``weights`` are
resolved on first use.
"""

import importlib

#: The data API's names, resolved lazily from their modules (``scalegmn.data.to_pyg``).
_API = {"load_split": "scalegmn.data.cache", "to_pyg": "scalegmn.data.api", "weights": "scalegmn.data.api"}


def __getattr__(name: str):
    """``scalegmn.data.load_split`` / ``to_pyg`` / ``weights``, imported on first use (they need torch)."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'scalegmn.data' has no attribute {name!r}")


__all__ = [
    "acquire",
    "api",
    "augment",
    "cache",
    "canonicalize",
    "config",
    "formats",
    "ingest",
    "siblings",
    "split_protocol",
    "splits",
    "standins",
    "network_set",
    "stream",
]
