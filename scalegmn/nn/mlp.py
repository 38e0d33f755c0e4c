"""The primitive MLP every ScaleGMN block is built from (scalegmn-spec §2.2).

``MLP(x) = Linear_2(Dropout(SiLU(LayerNorm?(Linear_1(x)))))``: one hidden layer of width
``d_hid``, identity output. It respects no symmetry by itself; the blocks that use it feed it
invariant inputs (``ScaleInv``) or use it on nodes without a symmetry (inputs/outputs).
"""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """``d_in -> d_hid -> d_out`` with optional LayerNorm, SiLU and dropout in between."""

    def __init__(
        self, d_in: int, d_out: int, d_hid: int, *, layer_norm: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.first = nn.Linear(d_in, d_hid)
        self.norm = nn.LayerNorm(d_hid) if layer_norm else nn.Identity()
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.second = nn.Linear(d_hid, d_out)

    def hidden(self, pre: torch.Tensor) -> torch.Tensor:
        """Everything after the first Linear: lets callers compute ``first`` in parts."""
        return self.second(self.dropout(self.act(self.norm(pre))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.first(x))


def split_first_linear(mlp: MLP, sizes: list[int]) -> list[torch.Tensor]:
    """The first Linear's weight cut into column blocks, one per concatenated input part.

    ``first([a ‖ b]) = a W_a^T + b W_b^T + bias``: callers compute each part where it is
    cheapest (per node instead of per edge) and add them.
    """
    return list(torch.split(mlp.first.weight, sizes, dim=1))
