"""What a job settles before training: the device, the seeds, the allocator, the preset's configs, the output count."""

from __future__ import annotations

import ctypes
import random
import sys
from collections.abc import Mapping

import numpy as np
import torch

from scalegmn.data.split_protocol import Split


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's upper limit on 64-bit: larger blocks are still mmapped
TRIM_THRESHOLD = 1 << 30


def retain_freed_memory() -> bool:
    """Keep memory freed by torch in the process instead of handing it back to the OS (glibc).

    A training step frees and allocates the same activation buffers every step. By default glibc
    trims the heap top, and mmaps blocks above a threshold it adapts as it goes, so those buffers
    return to the OS and are page-faulted (and zeroed) in again the next step: on a table-1
    ScaleGMN-B job, 5-8 million minor faults and 7-13 s of system time in a 60 s job. Here blocks
    up to 32 MB come from the heap and the heap is trimmed only above 1 GB free, so up to 1 GB of
    freed memory can stay in the process (that job's peak RSS: 620 MB against 610 MB). Both
    settings or neither: a fixed trim threshold alone also fixes the mmap threshold at 128 KiB,
    which faults every tensor in anew (3x slower).

    Returns whether it applied (False off glibc: macOS, musl, Windows).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    if not mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


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
