"""The one interface training, evaluation and prediction read networks through: :class:`Split`.

Implementations: :class:`scalegmn.data.cache.CachedSplit` (a cached zarr store, read once into
memory) and :class:`MemorySplit` (networks of one layout already in memory: a weight zoo read for
``scalegmn predict``, the tests' stand-ins). :class:`ArchitectureBatchSampler` batches the rows
of a split by architecture for a ``torch.utils.data.DataLoader``.

Zoos of many architectures (CNN Wild Park) come as a :class:`MixedSplit` (``is_mixed`` True,
``specs`` instead of ``spec``): every network's parameters flat in one tensor, and ``get``
gives a :class:`~scalegmn.weightspace.batch.MixedBatch` whose rows are grouped by architecture,
one gather per architecture present (never a loop over networks).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from scalegmn.data.network_set import gather_networks
from scalegmn.errors import DataError
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
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


def group_rows(arch_id: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
    """``idx`` reordered so that rows of one architecture are adjacent (architectures in order of
    first appearance, rows in their order), and ``(architecture, its rows)`` per group."""
    arch = arch_id[idx]
    uniq, inverse = torch.unique(arch, return_inverse=True)
    first = torch.full((len(uniq),), len(idx), dtype=torch.long, device=idx.device)
    first.scatter_reduce_(0, inverse, torch.arange(len(idx), device=idx.device), reduce="amin")
    rank = torch.argsort(first)
    key = torch.argsort(rank)[inverse]  # group position of each row
    order = torch.sort(key, stable=True).indices
    idx, key = idx[order], key[order]
    counts = torch.bincount(key, minlength=len(uniq)).tolist()
    archs = uniq[rank].tolist()
    out, lo = [], 0
    for a, c in zip(archs, counts, strict=True):
        out.append((int(a), idx[lo: lo + c]))
        lo += c
    return idx, out


@dataclass
class MixedSplit(torch.utils.data.Dataset):
    """N networks of several architectures, flat in memory: a split of a zoo like CNN Wild Park.

    Attributes:
        specs: the architectures; ``arch_id`` ``(N,)`` indexes them.
        params: ``(P,)`` every network's parameters (layer order, weight then bias), one after the other.
        offset: ``(N,)`` where each network starts in ``params``.
        y: ``(N,)`` float targets (or long labels), or None; sources, images, n_classes as in :class:`Split`.
        task_kind: "regression" | "classification"; attrs: provenance (the store's attributes).
    """

    specs: list[NetworkSpec]
    params: torch.Tensor
    offset: torch.Tensor
    arch_id: torch.Tensor
    y: torch.Tensor | None = None
    sources: Sequence[str] = field(default=())
    images: torch.Tensor | None = None
    n_classes: int | None = None
    task_kind: str = "regression"
    sign_mask: torch.Tensor | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = [f"net{i}" for i in range(self.size)]

    @classmethod
    def from_networks(cls, nets: Sequence[Network], y: torch.Tensor | None = None, **kwargs: Any) -> MixedSplit:
        """A split of single networks of any architectures (``scalegmn predict`` on a folder)."""
        specs: list[NetworkSpec] = []
        index: dict[str, int] = {}
        arch, offset, flats, pos = [], [], [], 0
        for n in nets:
            key = n.spec.key()
            if key not in index:
                index[key] = len(specs)
                specs.append(n.spec)
            flat = n.flat().detach().to(torch.float32).reshape(-1)
            arch.append(index[key])
            offset.append(pos)
            flats.append(flat)
            pos += flat.numel()
        return cls(specs=specs, params=torch.cat(flats) if flats else torch.zeros(0),
                   offset=torch.tensor(offset, dtype=torch.long), arch_id=torch.tensor(arch, dtype=torch.long),
                   y=y, sources=kwargs.pop("sources", None) or [n.source for n in nets], **kwargs)

    @property
    def size(self) -> int:
        """Number of networks N."""
        return int(self.arch_id.shape[0])

    @property
    def is_mixed(self) -> bool:
        """True: batches are :class:`~scalegmn.weightspace.batch.MixedBatch` (``specs``, not ``spec``)."""
        return True

    @property
    def spec(self) -> NetworkSpec:
        """The one architecture, when there is one; raises for several (use ``specs``)."""
        if len(self.specs) != 1:
            raise DataError(self.attrs.get("path", "split"), f"holds {len(self.specs)} architectures: its batches "
                            "are MixedBatch; read .specs, not .spec")
        return self.specs[0]

    def __len__(self) -> int:
        """Number of networks N (``torch.utils.data.Dataset``)."""
        return self.size

    def get(self, indices: torch.Tensor | np.ndarray | list[int]) -> MixedBatch:
        """The networks at ``indices`` as a MixedBatch, rows grouped by architecture (``index``
        says which row of the split each batch row is)."""
        idx = torch.as_tensor(indices, dtype=torch.long).to(self.arch_id.device)
        if idx.numel() == 0:
            raise ValueError("get() needs at least one row")
        idx, groups = group_rows(self.arch_id, idx)
        nets = tuple(gather_networks(self.params, self.offset[rows], self.specs[a]) for a, rows in groups)
        return MixedBatch(groups=nets, y=None if self.y is None else self.y[idx], index=idx)

    __getitem__ = get

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[MixedBatch]:
        """Mini-batches over the whole split (a fresh permutation per call when shuffling); each
        mixes architectures, grouped inside the batch."""
        order = torch.randperm(self.size, generator=generator) if shuffle else torch.arange(self.size)
        stop = self.size - (self.size % batch_size if drop_last else 0)
        for lo in range(0, stop, batch_size):
            yield self.get(order[lo: lo + batch_size])

    def loader(self, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
               generator: torch.Generator | None = None, **kwargs: Any) -> torch.utils.data.DataLoader:
        """A DataLoader of MixedBatches (whole batches read with one gather per architecture)."""
        base = (torch.utils.data.RandomSampler(range(self.size), generator=generator) if shuffle
                else torch.utils.data.SequentialSampler(range(self.size)))
        sampler = torch.utils.data.BatchSampler(base, batch_size, drop_last)
        return torch.utils.data.DataLoader(self, sampler=sampler, batch_size=None, **kwargs)
