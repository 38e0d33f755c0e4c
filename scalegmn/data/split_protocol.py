"""The one interface training, evaluation and prediction read networks through: :class:`Split`.

Implementations: :class:`scalegmn.data.cache.CachedSplit` (a cached zarr store, read once into
memory) and :class:`MemorySplit` (networks of one layout already in memory: a weight zoo read for
``scalegmn predict``, the tests' stand-ins).
"""

from __future__ import annotations

from collections.abc import Sequence
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
