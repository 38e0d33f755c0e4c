"""Edge updates (docs/model.md §2.3).

Scale/sign (equivariant): ``e' = Γ_E e ⊙ φ_E([τ(h_src) ‖ τ(h_dst)])``. ``e`` on j -> i scales
by ``q_i / q_j``; Γ_E is linear without bias and the φ_E input is invariant, so ``e'`` scales
like ``e``. Permutation only: ``e' = φ_E([e ‖ h_src ‖ h_dst])``.

φ_E's first Linear is split by input part and evaluated once per node, then the two node parts
are gathered and added per edge: the original evaluates it per edge.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from scalegmn.nn.invariant import Tau
from scalegmn.nn.lean import gated_hidden, lean_active, lean_supported
from scalegmn.nn.mlp import MLP, split_first_linear


class EdgeUpdate(nn.Module):
    """Scale/sign-equivariant edge update ``Γ_E e ⊙ φ_E([τ(h_src) ‖ τ(h_dst)])``.

    Shapes:
        ``h (N, d)``, ``e (E, d)``, ``node_odd (N,)`` bool or None -> ``(E, d_out)``.
    """

    def __init__(self, d: int, d_out: int, tau: Tau, *, d_hid: int, layer_norm: bool,
                 dropout: float) -> None:
        super().__init__()
        self.tau = tau
        self.gamma = nn.Linear(d, d_out, bias=False)
        self.phi = MLP(2 * d, d_out, d_hid, layer_norm=layer_norm, dropout=dropout)
        self.d = d
        self.lean = False  # lean autograd (scalegmn.nn.lean); set by the layer

    def forward(self, h: torch.Tensor, e: torch.Tensor,
                pair: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                node_odd: torch.Tensor | None,
                ends: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``pair(a, b)``: ``a[src] + b[dst]`` per edge (swapped for backward edges); ``ends``:
        the same as ``(src, dst)`` node rows (swapped likewise), for the lean path, which adds
        the two node parts per row chunk instead of per edge."""
        t = self.tau(h, node_odd)
        w_src, w_dst = split_first_linear(self.phi, [self.d, self.d])
        a, b = t @ w_src.T, t @ w_dst.T + self.phi.first.bias
        if ends is not None and self.lean and lean_active() and lean_supported(self):
            return gated_hidden(self.gamma, self.phi, e, a, b, *ends)
        return self.gamma(e) * self.phi.hidden(pair(a, b))


class PermEdgeUpdate(nn.Module):
    """Permutation-only edge update ``φ_E([e ‖ h_src ‖ h_dst])``.

    Shapes:
        ``h (N, d)``, ``e (E, d)`` -> ``(E, d_out)``.
    """

    def __init__(self, d: int, d_out: int, *, d_hid: int, layer_norm: bool, dropout: float) -> None:
        super().__init__()
        self.phi = MLP(3 * d, d_out, d_hid, layer_norm=layer_norm, dropout=dropout)
        self.d = d

    def forward(self, h: torch.Tensor, e: torch.Tensor,
                pair: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                node_odd: torch.Tensor | None = None) -> torch.Tensor:
        """``pair(a, b)``: ``a[src] + b[dst]`` per edge; ``node_odd`` is accepted and unused."""
        w_e, w_src, w_dst = split_first_linear(self.phi, [self.d] * 3)
        pre = e @ w_e.T + pair(h @ w_src.T, h @ w_dst.T + self.phi.first.bias)
        return self.phi.hidden(pre)
