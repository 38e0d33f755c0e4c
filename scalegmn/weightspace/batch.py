"""What a model receives: a batch of networks with their labels or targets.

The common case is one architecture per batch (every INR zoo, every Small CNN Zoo split):
:class:`WeightBatch` holds the stacked per-layer tensors and the models run their dense fast
path on it. Zoos that mix architectures (CNN Wild Park) come as a :class:`MixedBatch`: groups of
networks that share one architecture, concatenated in batch order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from scalegmn.weightspace.network import Network, is_odd


@dataclass(frozen=True)
class WeightBatch:
    """B networks of one layout.

    Attributes:
        net: stacked networks, ``net.weights[l]`` of shape ``(B, out, in[, kh, kw])``.
        sign_mask: ``(B,)`` bool, True where the hidden activation is odd (sine, tanh: sign
            symmetry) and False where it is ReLU (positive scaling). ``None`` when the whole
            batch shares ``net.spec.hidden_activation``.
        y: ``(B,)`` class labels (long) or regression targets (float), or ``None``.
        index: ``(B,)`` row of each network in its split (to look up images, sources, ...).
    """

    net: Network
    y: torch.Tensor | None = None
    sign_mask: torch.Tensor | None = None
    index: torch.Tensor | None = None

    @property
    def size(self) -> int:
        """Number of networks in the batch."""
        return int(self.net.batch_shape[0])

    def to(self, device: torch.device | str) -> WeightBatch:
        """A copy with every tensor moved to ``device`` (non-blocking)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return replace(
            self,
            net=self.net.to(device=device, non_blocking=True),
            y=move(self.y),
            sign_mask=move(self.sign_mask),
            index=move(self.index),
        )

    def take(self, rows: slice | torch.Tensor) -> WeightBatch:
        """The sub-batch of the given rows (a slice or an index tensor)."""

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[rows]

        net = self.net.replace(
            weights=tuple(w[rows] for w in self.net.weights),
            biases=tuple(b[rows] for b in self.net.biases),
            meta={},
        )
        return replace(self, net=net, y=pick(self.y), sign_mask=pick(self.sign_mask), index=pick(self.index))

    def odd_mask(self) -> torch.Tensor:
        """``(B,)`` bool: True where the sign group acts, False where positive scaling acts."""
        if self.sign_mask is not None:
            return self.sign_mask
        odd = is_odd(self.net.spec.hidden_activation)
        return torch.full((self.size,), odd, dtype=torch.bool, device=self.net.biases[0].device)


@dataclass(frozen=True)
class MixedBatch:
    """B networks of several architectures, as same-architecture groups.

    Attributes:
        groups: stacked networks, one per architecture present; ``groups[k].weights[l]`` is
            ``(B_k, out, in[, kh, kw])``. Batch row order is the groups' rows concatenated.
        y: ``(B,)`` class labels or regression targets in batch row order, or ``None``.
        index: ``(B,)`` row of each network in its split, or ``None``.
    """

    groups: tuple[Network, ...]
    y: torch.Tensor | None = None
    index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        if not self.groups or any(len(g.batch_shape) != 1 for g in self.groups):
            raise ValueError("a MixedBatch needs at least one group, each with one batch dimension")

    @property
    def size(self) -> int:
        """Number of networks in the batch."""
        return sum(int(g.batch_shape[0]) for g in self.groups)

    @property
    def group_sizes(self) -> tuple[int, ...]:
        """Networks per group, in batch order."""
        return tuple(int(g.batch_shape[0]) for g in self.groups)

    def to(self, device: torch.device | str) -> MixedBatch:
        """A copy with every tensor moved to ``device`` (non-blocking)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return replace(self, groups=tuple(g.to(device=device, non_blocking=True) for g in self.groups),
                       y=move(self.y), index=move(self.index))

    def take(self, rows: slice) -> MixedBatch:
        """The sub-batch of a contiguous range of rows (micro-batches); groups left empty are
        dropped."""
        start, stop, step = rows.indices(self.size)
        if step != 1:
            raise ValueError("MixedBatch.take() takes a contiguous slice of rows")
        groups, offset = [], 0
        for g in self.groups:
            n = int(g.batch_shape[0])
            lo, hi = max(start - offset, 0), min(stop - offset, n)
            if lo < hi:
                groups.append(g.replace(weights=tuple(w[lo:hi] for w in g.weights),
                                        biases=tuple(b[lo:hi] for b in g.biases), meta={}))
            offset += n
        if not groups:
            raise ValueError(f"MixedBatch.take({rows}): no rows of a batch of {self.size}")

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[start:stop]

        return MixedBatch(tuple(groups), y=pick(self.y), index=pick(self.index))
