"""The one interface training, evaluation and prediction read networks through: :class:`Split`.

Implementations: :class:`scalegmn.data.cache.CachedSplit` (a cached zarr store, read once into
memory) and :class:`MemorySplit` (networks of one layout already in memory: a weight zoo read for
``scalegmn predict``, the tests' stand-ins). :class:`ArchitectureBatchSampler` batches the rows
of a split by architecture for a ``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network, NetworkSpec


@runtime_checkable
class Split(Protocol):
    """N networks of one layout, indexed by row.

    Attributes:
        y: ``(N,)`` long labels or float targets, or None (editing);
        sources: where each network came from (a file, ``weights.npy#row``);
        images: ``(N, 1, 28, 28)`` float in [0, 1] (the image each INR was fit to) or None;
        n_classes: the number of classes a classification split declares, else None.
    """

    y: torch.Tensor | None
    sources: Sequence[str]
    images: torch.Tensor | None
    n_classes: int | None

    @property
    def size(self) -> int:
        """Number of networks N."""
        ...

    @property
    def spec(self) -> NetworkSpec:
        """The layout every network of the split has."""
        ...

    def get(self, indices: torch.Tensor | np.ndarray | list[int]) -> WeightBatch:
        """The networks at ``indices`` (rows of the split) as one batch."""
        ...


@dataclass
class MemorySplit:
    """A :class:`Split` of networks already stacked in memory.

    Attributes:
        net: ``net.weights[l]`` of shape ``(N, out, in[, kh, kw])``;
        sign_mask: ``(N,)`` bool (True = odd activation) when activations are mixed, else None;
        sources: defaults to ``net<i>``; the others as in :class:`Split`.
    """

    net: Network
    y: torch.Tensor | None = None
    n_classes: int | None = None
    images: torch.Tensor | None = None
    sign_mask: torch.Tensor | None = None
    sources: Sequence[str] = field(default=())

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = [f"net{i}" for i in range(self.size)]

    @property
    def size(self) -> int:
        """Number of networks N."""
        return int(self.net.batch_shape[0])

    @property
    def spec(self) -> NetworkSpec:
        """The layout every network of the split has."""
        return self.net.spec

    def get(self, indices: torch.Tensor | np.ndarray | list[int]) -> WeightBatch:
        """The networks at ``indices`` (rows of the split) as one batch."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        net = Network(self.spec, tuple(w[idx] for w in self.net.weights), tuple(b[idx] for b in self.net.biases))
        return WeightBatch(
            net=net,
            y=None if self.y is None else self.y[idx],
            sign_mask=None if self.sign_mask is None else self.sign_mask[idx],
            index=idx,
        )


class ArchitectureBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of row indices that share one architecture: the fast same-layout path.

    Pass it as ``sampler=`` with ``batch_size=None`` to a ``torch.utils.data.DataLoader`` over a
    split whose ``__getitem__`` takes a list of rows (:class:`scalegmn.data.cache.CachedSplit`):
    each batch is then read with one indexing per layer tensor, never per network.

    Args:
        arch_id: ``(N,)`` architecture of each row (all zeros for a one-layout split).
        batch_size: rows per batch (the last batch of each architecture may be smaller).
        shuffle: a fresh permutation per epoch (rows and the order of the batches).
        drop_last: drop each architecture's last incomplete batch.
        generator: the random generator of the permutations.
    """

    def __init__(self, arch_id: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 drop_last: bool = False, generator: torch.Generator | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.arch_id = torch.as_tensor(arch_id, dtype=torch.long).cpu()
        self.batch_size, self.shuffle, self.drop_last, self.generator = batch_size, shuffle, drop_last, generator

    def _batches(self) -> list[list[int]]:
        n = len(self.arch_id)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        out, archs = [], torch.unique(self.arch_id).tolist()
        for a in archs:
            rows = order[self.arch_id[order] == a].tolist()
            stop = len(rows) - (len(rows) % self.batch_size if self.drop_last else 0)
            out += [rows[lo : lo + self.batch_size] for lo in range(0, stop, self.batch_size)]
        if self.shuffle and len(archs) > 1:  # interleave the architectures' batches
            out = [out[i] for i in torch.randperm(len(out), generator=self.generator).tolist()]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        """Yield one list of rows per batch."""
        yield from self._batches()

    def __len__(self) -> int:
        """Number of batches per epoch."""
        counts = torch.bincount(self.arch_id) if len(self.arch_id) else torch.zeros(0, dtype=torch.long)
        per = [(c // self.batch_size) if self.drop_last else -(-c // self.batch_size) for c in counts.tolist()]
        return int(sum(per))
