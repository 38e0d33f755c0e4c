"""Scale-equivariant blocks: ScaleEq and ReScaleEq (docs/model.md §2.3).

Group action: every row ``x`` belongs to one neuron (or the target/sender of one message) with a
multiplier ``q`` (``q ∈ {±1}`` sign, ``q > 0`` scale, ``q = 1`` on input/output neurons).

- ``ScaleEq(x; a) = Γ x ⊙ ScaleInv(x; a)``: Γ is linear without bias, so ``Γ(q x) = q Γ x``, and
  ScaleInv is invariant: ``ScaleEq(q x) = q ScaleEq(x)``.
- Input/output rows have no symmetry: they use ``Γ x ⊙ φ_io([x ‖ a])`` or, with
  ``mlp_on_io``, ``φ_io([x ‖ a])`` alone; ``n_io_mlps = 2`` gives inputs and outputs their own φ.
- ``ReScaleEq(e, h)_{j→i} = Γ_e e_{j→i} ⊙ Γ_v h_j``: ``e`` scales by ``q_i / q_j``, ``h_j`` by
  ``q_j``, the product by ``q_i`` — an equivariant message for target i.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from scalegmn.nn.graph_batch import HIDDEN, INPUT, OUTPUT, RowGroups
from scalegmn.nn.invariant import ScaleInv, Tau
from scalegmn.nn.lean import (
    lean_active,
    lean_supported,
    rescaled_scale_eq_hidden,
    scale_eq_hidden,
)
from scalegmn.nn.mlp import MLP
from scalegmn.nn.precision import fp32, fp32_scope


class ScaleEq(nn.Module):
    """``Γ x ⊙ ScaleInv(x; a)`` on hidden rows, a plain (or gated) MLP on input/output rows.

    Shapes:
        ``x (R, d_in)``, ``a (R, d_extra)`` (or ``(N, d_extra)`` with ``a_index (R,)``) or
        None, ``odd (R,)`` bool or None -> ``(R, d_out)``.
    """

    def __init__(
        self,
        d_in: int,
        d_extra: int,
        d_out: int,
        tau: Tau,
        *,
        d_hid: int,
        n_io_mlps: int = 1,
        mlp_on_io: bool = False,
        layer_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        kw = dict(d_hid=d_hid, layer_norm=layer_norm, dropout=dropout)
        self.gamma = nn.Linear(d_in, d_out, bias=False)
        self.inv = ScaleInv(d_in, d_extra, d_out, tau, **kw)
        self.io = nn.ModuleList(MLP(d_in + d_extra, d_out, **kw) for _ in range(n_io_mlps))
        self.mlp_on_io = mlp_on_io
        self.d_out = d_out
        # Lean autograd for the per-edge hidden rows (scalegmn.nn.lean); set by the layer.
        self.lean = False

    def forward(
        self,
        x: torch.Tensor,
        a: torch.Tensor | None,
        odd: torch.Tensor | None,
        groups: RowGroups,
        a_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """With ``a_index`` (``(R,)`` long), ``a`` is per node and row ``r`` reads
        ``a[a_index[r]]``: the rows' ``a`` (a node's PE repeated on its edges) is never
        gathered in full; hidden rows gather φ's first-Linear projection of ``a``, computed per
        node (the same pre-activation for N instead of R rows of matmul)."""
        return self._forward(groups.split(x), None, a, odd, groups, a_index)

    def forward_rescaled(self, rescale: ReScaleEq, e: torch.Tensor, h: torch.Tensor,
                         sender: torch.Tensor, a, odd, groups: RowGroups,
                         a_index: torch.Tensor | None = None,
                         receiver: torch.Tensor | None = None, edge_map=None) -> torch.Tensor:
        """``self(rescale(e, h, with_sender), a, odd, groups, a_index)`` with ``sender`` ``(R,)``
        the node each row's ``h`` comes from; with ``receiver`` ``(R,)``, the rows' results
        summed per receiving node, ``(N, d_out)`` with ``N = h.shape[0]``; ``edge_map``: a
        row-wise map applied to ``e`` first (e.g. :func:`inverse_edge`). Lean hidden rows
        build ``Γ_e e ⊙ Γ_v h[sender]`` per chunk and sum their results per chunk: neither is
        kept or materialised per row (a memory-lean, copy-free form of the same computation)."""
        return self._forward(None, (rescale, groups.split(e), rescale.gamma_v(h), sender, edge_map),
                             a, odd, groups, a_index, receiver)

    def _forward(self, xs, rescaled, a, odd, groups: RowGroups, a_index, receiver=None
                 ) -> torch.Tensor:
        parts, sums = [], []
        odds = groups.split(odd)
        as_ = groups.split(a) if a_index is None else [None, None, None]
        for role in (INPUT, HIDDEN, OUTPUT):
            ar = as_[role]
            if rescaled is None:
                xr = xs[role]
                ref = xr
            else:
                rescale, es, hv, sender, edge_map = rescaled
                ref, sr = es[role], groups.take(sender, role)
                xr = None
            if ref.shape[0] == 0:
                parts.append(ref.new_zeros(0, self.d_out))
                continue
            index = None if a_index is None else groups.take(a_index, role)
            proj = None
            if index is not None:
                proj = self.inv.project_extra(a) if role == HIDDEN else None
                ar = a.index_select(0, index) if proj is None else None
            lean = role == HIDDEN and self.lean and lean_active() and lean_supported(self)
            if lean and rescaled is not None:
                if receiver is None:
                    parts.append(rescaled_scale_eq_hidden(self, rescale, ref, hv, sr, ar, proj,
                                                          index, edge_map=edge_map))
                else:
                    sums.append(rescaled_scale_eq_hidden(self, rescale, ref, hv, sr, ar, proj,
                                                         index, groups.take(receiver, role),
                                                         hv.shape[0], edge_map))
                    parts.append(ref.new_zeros(0, self.d_out))
                continue
            if xr is None:
                er = ref if edge_map is None else edge_map(ref)
                xr = rescale.gamma_e(er) * hv.index_select(0, sr)
            if lean:
                parts.append(scale_eq_hidden(self, xr, ar, proj, index))
            elif role == HIDDEN:
                pr = None if proj is None else proj.index_select(0, index)
                parts.append(self.gamma(xr) * self.inv(xr, ar, odds[role], pr))
            else:
                mlp = self.io[0] if (len(self.io) == 1 or role == INPUT) else self.io[1]
                g = mlp(xr if ar is None else torch.cat([xr, ar], dim=-1))
                parts.append(g if self.mlp_on_io else self.gamma(xr) * g)
        if receiver is None:
            return groups.combine(parts)
        for role, part in enumerate(parts):
            if part.shape[0] > 0:
                zeros = part.new_zeros(hv.shape[0], self.d_out)
                sums.append(zeros.index_add(0, groups.take(receiver, role), part))
        return sum(sums[1:], sums[0])


class ReScaleEq(nn.Module):
    """``Γ_e e ⊙ Γ_v h[sender]`` per edge; ``Γ_v h`` is computed once per node and combined by
    ``with_sender`` (:meth:`FlatGraph.with_src` or ``with_dst``).

    Shapes:
        ``e (E, d_edge)``, ``h (N, d_node)`` -> ``(E, d_out)``.
    """

    def __init__(self, d_edge: int, d_node: int, d_out: int) -> None:
        super().__init__()
        self.gamma_e = nn.Linear(d_edge, d_out, bias=False)
        self.gamma_v = nn.Linear(d_node, d_out, bias=False)

        self.lean = False  # set by the layer: recompute Γ_e e in backward instead of keeping it

    def _product(self, e: torch.Tensor, h: torch.Tensor, with_sender) -> torch.Tensor:
        return with_sender(self.gamma_e(e), self.gamma_v(h))

    def forward(self, e: torch.Tensor, h: torch.Tensor,
                with_sender: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``with_sender(Γ_e e, Γ_v h)``; the lean path recomputes ``Γ_e e`` in backward."""
        if self.lean and lean_active():
            # Keeps only e and h (kept anyway) instead of the (E, d) factor Γ_e e: one matmul
            # more in backward for one per-edge tensor less per layer.
            return checkpoint(self._product, e, h, with_sender, use_reentrant=False)
        return self._product(e, h, with_sender)


def inverse_edge(e: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """``e / ‖e‖²``: an edge state that scales by ``c`` maps to one scaling by ``1/c``.

    Backward messages of ScaleGMN-B need edge features that scale as ``q_j / q_k`` on the edge
    j -> k, the inverse of the forward law. Inverting the whole vector (not each entry) keeps
    zero-padded kernel slots at 0. ``‖e‖²`` is clamped below at ``eps``: with ``eps = 0``
    (default) the map is exactly equivariant; ``eps > 0`` bounds the result by ``1 / sqrt(eps)``
    at the price of equivariance for edges with ``‖e‖² < eps``.

    An edge whose ``‖e‖²`` is below ``sqrt(finfo.tiny)`` (float32: ``‖e‖ < 3e-10``; float64:
    ``‖e‖ < 1e-77``) is numerically zero and maps to 0, like a zero edge: its inverse would
    overflow the LayerNorms after it (real CNN zoos hold such runs, whose weights decayed to
    denormals). Computed in float32 under bf16 autocast (scalegmn.nn.precision).
    """
    with fp32_scope(e):
        e = fp32(e)
        n2 = e.square().sum(dim=-1, keepdim=True)
        n2 = n2.clamp_min(eps) if eps > 0 else n2
        zero = n2 < torch.finfo(n2.dtype).tiny ** 0.5
        return torch.where(zero, torch.zeros_like(e), e / torch.where(zero, torch.ones_like(n2), n2))
