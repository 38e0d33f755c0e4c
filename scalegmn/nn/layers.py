"""Message-passing layers: forward ScaleGMN, bidirectional ScaleGMN-B, permutation-only GMN.

Forward layer (docs/model.md §2.5), on forward edges j -> i::

    m_i = Σ_{j→i} ScaleEq_msg(Γ_e e_{j→i} ⊙ Γ_v h_j ; a?)      (scales by q_i)
    h̃_i = ScaleEq_upd([h_i ‖ m_i] ; a_i?)                       (scales by q_i)
    e'   = EdgeUpdate(h, e)                                      (scales like e)

Bidirectional layer (§2.6) adds backward messages to the sender j of each edge j -> k::

    m_j^b = Σ_{k: j→k} ScaleEq_b(Γ_e^b ẽ_{j→k} ⊙ Γ_v^b h_k)

The original feeds ``ẽ = e`` (which scales by ``q_k / q_j``), so ``m^b`` scales by
``q_k² / q_j``: not equivariant for positive scaling. Here, by default for scale and hetero,
``ẽ = e / ‖e‖²`` scales by ``q_j / q_k`` and the message by ``q_j`` as required (see
:func:`scalegmn.nn.equivariant.inverse_edge`). The backward edge state is updated by its own
EdgeUpdate for the scale symmetry only, as in the original.

Every layer returns ``(h̃, e', ẽ')``; skip connections and dropout are applied by the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from scalegmn.execution import DEFAULT_EXECUTION, ExecutionConfig
from scalegmn.nn.edge_update import EdgeUpdate, PermEdgeUpdate
from scalegmn.nn.equivariant import ReScaleEq, ScaleEq, inverse_edge
from scalegmn.nn.graph_batch import FlatGraph
from scalegmn.nn.invariant import Tau
from scalegmn.nn.lean import lean_active, lean_supported
from scalegmn.nn.mlp import MLP, split_first_linear


@dataclass(frozen=True)
class LayerOptions:
    """What a layer needs from the model config."""

    d: int
    symmetry: str
    tau: str
    layer_norm: bool
    mlp_dropout: float
    n_io_mlps: int
    mlp_on_io: bool
    pe_msg: bool
    pe_upd: bool
    bw_inverse: bool = False
    bw_eps: float = 0.0
    bw_update: bool = False
    execution: ExecutionConfig = DEFAULT_EXECUTION
    mixed: bool = False  # per-node kinds (mixed architectures, the general FlatGraph)

    def mlp_kw(self) -> dict:
        """Keyword arguments of every MLP in the layer (hidden width, layer norm, dropout)."""
        return dict(d_hid=self.d, layer_norm=self.layer_norm, dropout=self.mlp_dropout)

    def tau_module(self, k: int) -> Tau:
        """A fresh invariant map τ for ``k``-wide inputs, for this symmetry and τ form."""
        return Tau(k, self.symmetry, self.tau, **self.mlp_kw(), mixed=self.mixed)


class ScaleGMNLayer(nn.Module):
    """One forward (``bidirectional=False``) or bidirectional ScaleGMN layer."""

    def __init__(self, opt: LayerOptions, *, bidirectional: bool, d_node_out: int,
                 d_edge_out: int | None) -> None:
        super().__init__()
        d = opt.d
        self.opt, self.bidirectional = opt, bidirectional
        d_msg_extra = d if opt.pe_msg else 0
        d_upd_extra = d if opt.pe_upd else 0
        eq_kw = dict(n_io_mlps=opt.n_io_mlps, mlp_on_io=opt.mlp_on_io, **opt.mlp_kw())
        self.fwd_rescale = ReScaleEq(d, d, d)
        self.fwd_msg = ScaleEq(d, d_msg_extra, d, opt.tau_module(d), **eq_kw)
        if bidirectional:
            self.bwd_rescale = ReScaleEq(d, d, d)
            self.bwd_msg = ScaleEq(d, d_msg_extra, d, opt.tau_module(d), **eq_kw)
        n_in = 3 if bidirectional else 2
        self.update = ScaleEq(n_in * d, d_upd_extra, d_node_out, opt.tau_module(n_in * d), **eq_kw)
        self.edge_update = None
        self.bwd_edge_update = None
        if d_edge_out is not None:
            self.edge_update = EdgeUpdate(d, d_edge_out, opt.tau_module(d), **opt.mlp_kw())
            if bidirectional and opt.bw_update:
                self.bwd_edge_update = EdgeUpdate(d, d_edge_out, opt.tau_module(d), **opt.mlp_kw())
        # Lean blocks where the policy allows them (full checkpointing already keeps nothing
        # per edge); whether a batch uses them is decided per batch (lean_scope).
        for block in (self.fwd_msg, getattr(self, "bwd_msg", None), self.update, self.fwd_rescale,
                      getattr(self, "bwd_rescale", None),
                      self.edge_update, self.bwd_edge_update):
            if block is not None:
                block.lean = opt.execution.lean

    def _run(self, fn, *args):
        """``fn(*args)``, checkpointed when enabled: its per-edge intermediates are recomputed
        in backward instead of kept (memory per layer: its inputs and outputs only)."""
        if self.opt.execution.checkpoint and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def _messages(self, rescale: ReScaleEq, block: ScaleEq, h, e, pe, sender, receiver,
                  a_index, with_sender, sum_at, edge_odd, groups, edge_map=None):
        """``block(rescale(edge_map(e), h))`` per edge, summed at each edge's ``receiver`` node."""
        # The PE is passed per node with the row -> node index (ScaleEq gathers what it needs).
        a, a_index = (pe, a_index) if self.opt.pe_msg else (None, None)
        if rescale.lean and block.lean and lean_active() and lean_supported(block):
            # Lean: per-edge inputs and messages are built and summed per row chunk.
            return block.forward_rescaled(rescale, e, h, sender, a, edge_odd, groups, a_index,
                                          receiver, edge_map)
        e = e if edge_map is None else edge_map(e)
        return sum_at(block(rescale(e, h, with_sender), a, edge_odd, groups, a_index))

    def _fwd_messages(self, g: FlatGraph, h, e, pe, edge_odd):
        # The forward ScaleGMN hands messages the target's PE, the bidirectional one the sender's.
        a_index = g.src if self.bidirectional else g.dst
        return self._messages(self.fwd_rescale, self.fwd_msg, h, e, pe, g.src, g.dst, a_index,
                              g.with_src, g.sum_at_dst, edge_odd, g.groups("fwd"))

    def _bwd_messages(self, g: FlatGraph, h, bw, pe, edge_odd):
        edge_map = partial(inverse_edge, eps=self.opt.bw_eps) if self.opt.bw_inverse else None
        return self._messages(self.bwd_rescale, self.bwd_msg, h, bw, pe, g.dst, g.src, g.dst,
                              g.with_dst, g.sum_at_src, edge_odd, g.groups("bwd"), edge_map)

    def forward(self, g: FlatGraph, h: torch.Tensor, e: torch.Tensor, bw: torch.Tensor | None,
                pe: torch.Tensor | None, node_odd: torch.Tensor | None,
                edge_odd: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One layer on the flat graph ``g`` (N nodes, E edges).

        Shapes:
            ``h (N, d)``, ``e (E, d)``, ``bw (E, d)`` backward edge state or None (forward
            layer), ``pe (N, d)`` node PE or None, ``node_odd (N,)`` / ``edge_odd (E,)`` bool
            (hetero only, else None) -> ``(h̃ (N, d_node_out), e' (E, d_edge_out) or e,
            ẽ' (E, d) or bw)``. Mixed architectures: ``node_odd`` per-node kinds (long) and
            ``edge_odd`` a pair, the kinds of the forward and backward messages' receivers
            (:meth:`FlatGraph.edge_kinds`).
        """
        fwd_odd, bwd_odd = edge_odd if isinstance(edge_odd, tuple) else (edge_odd, edge_odd)
        parts = [h, self._run(self._fwd_messages, g, h, e, pe, fwd_odd)]
        if self.bidirectional:
            parts.append(self._run(self._bwd_messages, g, h, bw, pe, bwd_odd))
        upd_a = pe if self.opt.pe_upd else None
        h_new = self.update(torch.cat(parts, dim=-1), upd_a, node_odd, g.groups("nodes"))
        e_new = e
        if self.edge_update is not None:
            e_new = self._run(self.edge_update, h, e, g.src_plus_dst, node_odd, (g.src, g.dst))
        if self.bwd_edge_update is not None:
            bw = self._run(self.bwd_edge_update, h, bw, lambda a, b: g.src_plus_dst(b, a), node_odd,
                           (g.dst, g.src))
        return h_new, e_new, bw


class GMNLayer(nn.Module):
    """Permutation-only GMN layer (docs/model.md §2.9): MLP messages ``φ([e ‖ h_sender ‖ a?])``,
    MLP update ``φ([h ‖ m^f ‖ m^b? ‖ a?])``, edge update ``φ([e ‖ h_src ‖ h_dst])``.
    Equivariant to permutations of hidden neurons because every op is per row or a sum over
    neighbours."""

    def __init__(self, opt: LayerOptions, *, bidirectional: bool, d_node_out: int,
                 d_edge_out: int | None) -> None:
        super().__init__()
        d = opt.d
        self.opt, self.bidirectional = opt, bidirectional
        d_msg_extra = d if opt.pe_msg else 0
        self.fwd_msg = MLP(2 * d + d_msg_extra, d, **opt.mlp_kw())
        self.bwd_msg = MLP(2 * d + d_msg_extra, d, **opt.mlp_kw()) if bidirectional else None
        n_in = 3 if bidirectional else 2
        self.update = MLP(n_in * d + (d if opt.pe_upd else 0), d_node_out, **opt.mlp_kw())
        self.edge_update = None
        if d_edge_out is not None:
            self.edge_update = PermEdgeUpdate(d, d_edge_out, **opt.mlp_kw())

    def _message(self, mlp: MLP, e, h, with_sender, a):
        d = self.opt.d
        sizes = [d, d] + ([d] if a is not None else [])
        w = split_first_linear(mlp, sizes)
        pre = with_sender(e @ w[0].T, h @ w[1].T + mlp.first.bias, torch.add)
        if a is not None:
            pre = pre + a @ w[2].T
        return mlp.hidden(pre)

    def forward(self, g: FlatGraph, h: torch.Tensor, e: torch.Tensor, bw: torch.Tensor | None,
                pe: torch.Tensor | None, node_odd: torch.Tensor | None = None,
                edge_odd: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Shapes as :meth:`ScaleGMNLayer.forward` (``node_odd``/``edge_odd`` unused)."""
        if not (self.opt.execution.checkpoint and torch.is_grad_enabled()):
            return self._forward(g, h, e, bw, pe, node_odd, edge_odd)
        return checkpoint(self._forward, g, h, e, bw, pe, node_odd, edge_odd, use_reentrant=False)

    def _forward(self, g, h, e, bw, pe, node_odd, edge_odd):
        fwd_a = None
        if self.opt.pe_msg:
            fwd_a = g.gather_src(pe) if self.bidirectional else g.gather_dst(pe)
        parts = [h, g.sum_at_dst(self._message(self.fwd_msg, e, h, g.with_src, fwd_a))]
        if self.bidirectional:
            bwd_a = g.gather_dst(pe) if self.opt.pe_msg else None
            parts.append(g.sum_at_src(self._message(self.bwd_msg, bw, h, g.with_dst, bwd_a)))
        if self.opt.pe_upd:
            parts.append(pe)
        h_new = self.update(torch.cat(parts, dim=-1))
        e_new = e
        if self.edge_update is not None:
            e_new = self.edge_update(h, e, g.src_plus_dst)
        return h_new, e_new, bw
