"""What a job settles before training: the device, the seeds, the preset's configs, the output count."""

from __future__ import annotations

import random
from collections.abc import Mapping

import numpy as np
import torch

from scalegmn.data.split_protocol import Split


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch. Deterministic kernels are the execution policy's
    (``execution.deterministic``, set when the model is built, which undid any setting made here)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def n_outputs_for(task: str, splits: Mapping[str, Split]) -> int:
    """Classes (classification) from the store, else from the labels seen; 1 otherwise."""
    if task != "classification":
        return 1
    declared = [s.n_classes for s in splits.values() if getattr(s, "n_classes", None)]
    seen = max(int(s.y.max()) + 1 for s in splits.values() if s.size)
    return max(declared + [seen])
