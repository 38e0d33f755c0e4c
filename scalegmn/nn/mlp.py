"""The primitive MLP every ScaleGMN block is built from (docs/model.md §2.2).

``MLP(x) = Linear_2(Dropout(SiLU(LayerNorm?(Linear_1(x)))))``: one hidden layer of width
``d_hid``, identity output. It respects no symmetry by itself; the blocks that use it feed it
invariant inputs (``ScaleInv``) or use it on nodes without a symmetry (inputs/outputs).

The form is written once, here, in functional terms (no submodule calls), so the lean autograd
Functions of :mod:`scalegmn.nn.lean` evaluate the very same code as plain autograd; the
activation's derivative sits next to the activation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalegmn.nn.precision import autocasting, fp32, fp32_scope


class MLP(nn.Module):
    """``d_in -> d_hid -> d_out`` with optional LayerNorm, SiLU and dropout in between.

    Args:
        d_in: input channels.
        d_out: output channels.
        d_hid: hidden channels.
        layer_norm: LayerNorm before the activation (default: True).
        dropout: dropout probability after the activation (default: 0).

    Shapes:
        input ``(*, d_in)``; output ``(*, d_out)``.
    """

    #: The hidden activation and its derivative ``(∂L/∂out, z) -> ∂L/∂z`` (used by lean backward).
    activation = staticmethod(F.silu)
    activation_backward = staticmethod(torch.ops.aten.silu_backward)

    def __init__(
        self, d_in: int, d_out: int, d_hid: int, *, layer_norm: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.first = nn.Linear(d_in, d_hid)
        self.norm = nn.LayerNorm(d_hid) if layer_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.second = nn.Linear(d_hid, d_out)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """``LayerNorm?(z)``, ``(*, d_hid)`` (float32 under bf16 autocast)."""
        n = self.norm
        if isinstance(n, nn.LayerNorm):
            if autocasting(z):  # checked first: the hot path (no autocast) pays no context manager
                with fp32_scope(z):
                    return F.layer_norm(fp32(z), n.normalized_shape, n.weight, n.bias, n.eps)
            return F.layer_norm(z, n.normalized_shape, n.weight, n.bias, n.eps)
        return z

    def activated(self, z: torch.Tensor) -> torch.Tensor:
        """``Dropout(SiLU(LayerNorm?(z)))``: the hidden layer after its pre-activation ``z``."""
        y = self.activation(self.normalize(z))
        if isinstance(self.dropout, nn.Dropout):
            y = F.dropout(y, self.dropout.p, self.training)
        return y

    def hidden(self, pre: torch.Tensor) -> torch.Tensor:
        """Everything after the first Linear, ``(*, d_hid) -> (*, d_out)``: lets callers
        compute ``first`` in parts."""
        return F.linear(self.activated(pre), self.second.weight, self.second.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(*, d_in) -> (*, d_out)``."""
        return self.hidden(F.linear(x, self.first.weight, self.first.bias))


def split_first_linear(mlp: MLP, sizes: list[int]) -> list[torch.Tensor]:
    """The first Linear's weight cut into column blocks, one per concatenated input part.

    ``first([a ‖ b]) = a W_a^T + b W_b^T + bias``: callers compute each part where it is
    cheapest (per node instead of per edge) and add them.
    """
    return list(torch.split(mlp.first.weight, sizes, dim=1))
