"""Invariant maps τ and the ScaleInv block (docs/model.md §2.3).

Group actions (per row ``x ∈ R^k``, one scalar ``q`` acting on the whole row):

- sign, ``tau="abs"``: ``τ(x) = |x|``; ``τ(q x) = τ(x)`` for ``q ∈ {±1}``.
- sign, ``tau="sym"``: ``τ(x) = ρ(x) + ρ(-x)``, ρ an MLP ``k -> k``; symmetric in ``x -> -x``.
- scale: ``τ(x) = x / (‖x‖₂ + ε)`` over the whole row; invariant for ``q > 0`` (up to ε).
- hetero: ``τ(x) = s τ_sign(x) + (1 - s) τ_scale(x)`` with ``s`` the row's graph odd flag
  (tanh/sine graphs: sign group; ReLU graphs: positive scaling).
- permutation: ``τ(x) = x`` (no scaling symmetry).
- hetero on mixed architectures (``mixed=True``): the group is per row, a kind index
  (``SCALE_KINDS``: 0 sign, 1 positive, 2 none); τ is the sign, scale or identity map by kind.

``ScaleInv(x; a) = φ([τ(x) ‖ a])``: invariant whenever the extra features ``a`` are (positional
encodings of node types are). For hetero, each group has its own φ, as in the original:
``s φ_sign([τ_sign(x) ‖ a]) + (1 - s) φ_scale([τ_scale(x) ‖ a])``. With per-row kinds
(mixed architectures) one φ reads every kind's τ and adds a learned offset per kind to its
first Linear (``φ₂(σ(W₁ [τ_k(x) ‖ a] + b₁ + c_k))``): the kind is invariant, and one φ costs a
third of three.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalegmn.nn.mlp import MLP
from scalegmn.nn.precision import autocasting, fp32, fp32_scope

SYMMETRIES = ("sign", "scale", "hetero", "permutation")
TAUS = ("abs", "sym")


class Tau(nn.Module):
    """The invariant map τ for one symmetry; ``forward(x, odd)`` with ``odd`` ``(R,)`` bool."""

    def __init__(
        self,
        k: int,
        symmetry: str,
        tau: str = "abs",
        *,
        d_hid: int = 128,
        layer_norm: bool = True,
        dropout: float = 0.0,
        eps: float = 1e-10,
        mixed: bool = False,
    ) -> None:
        super().__init__()
        if mixed and symmetry != "hetero":
            raise ValueError(f"per-row kinds (mixed=True) need the hetero symmetry, not {symmetry!r}")
        if symmetry not in SYMMETRIES:
            raise ValueError(f"symmetry {symmetry!r}: use one of {SYMMETRIES}")
        if tau not in TAUS:
            raise ValueError(f"tau {tau!r}: use one of {TAUS}")
        self.symmetry, self.tau, self.eps, self.mixed = symmetry, tau, eps, mixed
        uses_rho = symmetry in ("sign", "hetero") and tau == "sym"
        self.rho = MLP(k, k, d_hid, layer_norm=layer_norm, dropout=dropout) if uses_rho else None

    def rho_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``ρ.activated(x W1^T + b1) + ρ.activated(b1 - x W1^T)``, ``(R, k) -> (R, d_hid)``:
        ρ(x) + ρ(-x) before ρ's second Linear, with the first Linear shared
        (``W1(-x) = -(W1 x)``)."""
        rho = self.rho
        u = x @ rho.first.weight.T
        return rho.activated(u + rho.first.bias) + rho.activated(rho.first.bias - u)

    def sign_part(self, x: torch.Tensor) -> torch.Tensor:
        """τ for the sign group, ``(R, k) -> (R, k)``: ``|x|`` or ``ρ(x) + ρ(-x)``."""
        if self.rho is None:
            return fp32(x).abs()  # float32 under bf16 autocast (scalegmn.nn.precision)
        # The second Linear is applied once to the sum: half the matmuls of two ρ calls.
        rho = self.rho
        return F.linear(self.rho_hidden(x), rho.second.weight, 2 * rho.second.bias)

    def scale_part(self, x: torch.Tensor) -> torch.Tensor:
        """τ for positive scaling, ``(R, k) -> (R, k)``: ``x / (‖x‖ + ε)`` (float32 under bf16)."""
        if not autocasting(x):
            return x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + self.eps)
        with fp32_scope(x):
            x = fp32(x)
            return x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + self.eps)

    def forward(self, x: torch.Tensor, odd: torch.Tensor | None = None) -> torch.Tensor:
        """``τ(x)``, ``(R, k) -> (R, k)``; ``odd (R,)`` bool picks the group per row (hetero only),
        or ``(R,)`` long kinds (0 sign, 1 positive, 2 none; mixed architectures).

        Functional (no submodule calls): the lean autograd Functions call it as well.
        """
        if self.symmetry == "sign":
            return self.sign_part(x)
        if self.symmetry == "scale":
            return self.scale_part(x)
        if self.symmetry == "permutation":
            return x
        if odd is None:
            raise ValueError("hetero symmetry needs the per-row odd flags")
        if odd.dtype != torch.bool:
            kind = odd.unsqueeze(-1)
            scaled = torch.where(kind == 1, self.scale_part(x), x)
            return torch.where(kind == 0, self.sign_part(x), scaled)
        return torch.where(odd.unsqueeze(-1), self.sign_part(x), self.scale_part(x))


class ScaleInv(nn.Module):
    """``φ([τ(x) ‖ a])``: invariant to the row's scaling group (and to ``a``'s, if any).

    Shapes:
        ``x (R, k)``, ``a (R, d_extra)`` or None, ``odd (R,)`` bool or None (hetero),
        ``a_proj (R, d_hid)`` or None -> ``(R, d_out)``.
    """

    def __init__(self, k: int, d_extra: int, d_out: int, tau: Tau, *, d_hid: int,
                 layer_norm: bool, dropout: float) -> None:
        super().__init__()
        self.tau = tau
        self.phi = MLP(k + d_extra, d_out, d_hid, layer_norm=layer_norm, dropout=dropout)
        self.phi_scale = None
        self.kind_bias = None
        if tau.mixed:  # one φ, a learned offset per kind (sign, positive, none)
            self.kind_bias = nn.Parameter(torch.zeros(3, d_hid))
        elif tau.symmetry == "hetero":
            self.phi_scale = MLP(k + d_extra, d_out, d_hid, layer_norm=layer_norm, dropout=dropout)

    @staticmethod
    def _with(t: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        return t if a is None else torch.cat([t, a], dim=-1)

    def project_extra(self, a: torch.Tensor) -> torch.Tensor | None:
        """``a W_a^T``: the part of φ's first Linear that reads the extra features ``a``.

        Callers whose ``a`` rows repeat (a node's PE gathered per edge) project once per node
        and gather the projection: the same pre-activation for fewer FLOPs. ``None`` for hetero
        (two φ).
        """
        if self.phi_scale is not None:
            return None
        k = self.phi.first.in_features - a.shape[-1]
        return a @ self.phi.first.weight[:, k:].T

    def forward(self, x: torch.Tensor, a: torch.Tensor | None, odd: torch.Tensor | None,
                a_proj: torch.Tensor | None = None) -> torch.Tensor:
        """``a_proj`` (from :meth:`project_extra`, per row) replaces ``a`` when given."""
        if self.kind_bias is not None:
            return self._forward_kinds(x, a, odd, a_proj)
        if a_proj is not None:
            t = self.tau(x, odd)
            w = self.phi.first.weight[:, : t.shape[-1]]
            return self.phi.hidden(torch.nn.functional.linear(t, w, self.phi.first.bias) + a_proj)
        if self.phi_scale is None:
            return self.phi(self._with(self.tau(x, odd), a))
        if odd is None:
            raise ValueError("hetero symmetry needs the per-row odd flags")
        if odd.dtype != torch.bool:
            raise ValueError("per-row kinds need a model built for mixed architectures")
        sign = self.phi(self._with(self.tau.sign_part(x), a))
        scale = self.phi_scale(self._with(self.tau.scale_part(x), a))
        return torch.where(odd.unsqueeze(-1), sign, scale)

    def _forward_kinds(self, x: torch.Tensor, a: torch.Tensor | None, kind: torch.Tensor | None,
                       a_proj: torch.Tensor | None) -> torch.Tensor:
        """``φ₂(σ(W₁ [τ_k(x) ‖ a] + b₁ + c_k))`` with ``k`` each row's kind (long)."""
        if kind is None or kind.dtype == torch.bool:
            raise ValueError("a model for mixed architectures needs per-row kinds (long)")
        t = self.tau(x, kind)
        w = self.phi.first.weight
        pre = F.linear(t, w[:, : t.shape[-1]], self.phi.first.bias)
        pre = pre + self.kind_bias.index_select(0, kind).to(pre.dtype)
        if a_proj is not None:
            pre = pre + a_proj
        elif a is not None:
            pre = pre + a @ w[:, t.shape[-1]:].T
        return self.phi.hidden(pre)
