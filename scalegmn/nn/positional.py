"""Learned positional encodings of node and edge types (docs/model.md §1.4, §2.4).

Types break only the symmetries that do not exist: every input and output neuron has its own
type, every hidden layer shares one. Group action kept:

- hidden nodes (and all edges): ``h ← h ⊙ P[type]`` (multiplicative), so ``q h`` maps to
  ``q (h ⊙ P)``: scale/sign equivariance is kept; permutations within a layer see one type.
- input/output nodes: ``h ← h + P[type]`` (additive, ``sum_on_io``); they carry no scaling.
- permutation-only GMN: additive everywhere.
"""

from __future__ import annotations

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """A table ``P ∈ R^{T×d}`` (randn init) applied multiplicatively or additively per row."""

    def __init__(self, n_types: int, d: int, *, multiplicative: bool) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(n_types, d))
        self.multiplicative = multiplicative

    def check(self, n_types: int) -> None:
        """``ValueError`` when graphs with ``n_types`` types (from their architecture, a Python
        int: reading the type tensor would synchronise a GPU every step) do not fit the table."""
        if n_types > self.table.shape[0]:
            raise ValueError(
                f"a graph has type {n_types - 1} but the model was built for "
                f"{self.table.shape[0]} types; build the model for this architecture"
            )

    def lookup(self, types: torch.Tensor) -> torch.Tensor:
        """``P[types]``: ``types (R,)`` long -> ``(R, d)`` (callers :meth:`check` the types)."""
        return self.table.index_select(0, types)

    def forward(self, x: torch.Tensor, types: torch.Tensor, additive_rows: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``x ⊙ P[type]`` (or ``x + P[type]``); ``additive_rows`` (bool) always add."""
        p = self.lookup(types)
        if not self.multiplicative:
            return x + p
        if additive_rows is None:
            return x * p
        return torch.where(additive_rows.unsqueeze(-1), x + p, x * p)
