"""NG-T's relational transformer layer (Neural Graphs, Kofinas et al., ICLR 2024, §3.2) on a
:class:`FlatGraph`, index-based.

NG's relational transformer attends over **all** ordered node pairs ``(i, j)`` of a graph
(``i = j`` included); a pair carries the edge state of the weight ``i → j`` where there is one
and a learned "no edge" state elsewhere (NG: the embedding of a zero weight). :class:`NodePairs`
lists those pairs for a batch of graphs of any sizes (``Σ_g N_g²`` rows, built from
``node_graph`` alone), so the layer is the dense attention of NG without padding;
:meth:`NodePairs.neighbours` lists only the pairs of connected nodes, both ways, and of each node
with itself (``2 E + N`` rows: the same layer, attention restricted to neighbours). Each layer:

    q_ij = Q h_i + Q_e e_ij,  k_ij = K h_j + K_e e_ij,  v_ij = (V h_j) ⊙ V'_e e_ij + V_e e_ij
    a_ij = softmax_j(q_ij · k_ij / √d_attn)  (per head),  h_i ← LN(h_i + Lin Σ_j a_ij v_ij)
    h ← LN(h + MLP(h));  e_ij ← LN(e_ij + MLP_e(e_ij, e_ji, h_i, h_j));  e ← LN(e + MLP(e))

Group action: permutations of hidden neurons (pairs are relabelled with their nodes).
Not scale or sign equivariant.

Cost: ``Σ_g N_g²`` pair rows per layer (an MNIST INR: 67² = 4,489 pairs for 1,120 weights),
quadratic in the width of the networks read; ``2 E + N`` with neighbours only (2,307).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from scalegmn.nn.precision import autocasting


@dataclass
class NodePairs:
    """All ordered node pairs of each graph of a batch, and where its edges sit among them.

    Shapes: ``first``/``second``/``reverse`` ``(P,)`` with ``P = Σ_g N_g²``: the pair's nodes
    ``(i, j)`` and the row of ``(j, i)``; ``edge_pair (E,)``: the row of each edge ``src → dst``.
    """

    first: torch.Tensor
    second: torch.Tensor
    reverse: torch.Tensor
    edge_pair: torch.Tensor

    @property
    def n_pairs(self) -> int:
        """Number of pairs P."""
        return int(self.first.shape[0])

    @classmethod
    def build(cls, node_graph: torch.Tensor, num_graphs: int, src: torch.Tensor, dst: torch.Tensor,
              edge_graph: torch.Tensor) -> NodePairs:
        """The pairs of the graphs ``node_graph (N,)`` (rows in any order) with edges ``src → dst``."""
        device = node_graph.device
        n = node_graph.shape[0]
        order = torch.argsort(node_graph, stable=True)  # nodes grouped by graph
        counts = torch.bincount(node_graph, minlength=num_graphs)
        start = torch.cumsum(counts, 0) - counts
        pos = torch.empty_like(order)  # a node's position within its graph
        pos[order] = torch.arange(n, device=device) - start.index_select(0, node_graph.index_select(0, order))
        squares = counts * counts
        pair_start = torch.cumsum(squares, 0) - squares
        pair_graph = torch.repeat_interleave(torch.arange(num_graphs, device=device), squares)
        c = counts.index_select(0, pair_graph)
        local = torch.arange(pair_graph.shape[0], device=device) - pair_start.index_select(0, pair_graph)
        i, j = local // c, local % c
        base = start.index_select(0, pair_graph)
        first, second = order.index_select(0, base + i), order.index_select(0, base + j)
        reverse = pair_start.index_select(0, pair_graph) + j * c + i
        ce = counts.index_select(0, edge_graph)
        edge_pair = pair_start.index_select(0, edge_graph) + pos.index_select(0, src) * ce + pos.index_select(0, dst)
        return cls(first=first, second=second, reverse=reverse, edge_pair=edge_pair)


    @classmethod
    def neighbours(cls, src: torch.Tensor, dst: torch.Tensor, n_nodes: int) -> NodePairs:
        """The pairs of the edges in both directions and of every node with itself
        (``2 E + N`` rows): attention restricted to each node's neighbours."""
        e = src.shape[0]
        ar_e = torch.arange(e, device=src.device)
        nodes = torch.arange(n_nodes, device=src.device)
        return cls(first=torch.cat([src, dst, nodes]), second=torch.cat([dst, src, nodes]),
                   reverse=torch.cat([ar_e + e, ar_e, 2 * e + nodes]), edge_pair=ar_e)


def segment_softmax(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of ``x (P, H)`` over the rows sharing ``index (P,)`` (values in ``0..n-1``)."""
    idx = index.unsqueeze(-1).expand_as(x)
    # The shift by each segment's peak cancels in the softmax: computed off the autograd graph.
    peak = x.new_full((n, x.shape[1]), -torch.inf).scatter_reduce(0, idx, x.detach(), "amax", include_self=True)
    z = torch.exp(x - peak.index_select(0, index))
    total = x.new_zeros(n, x.shape[1]).index_add(0, index, z)
    return z / total.index_select(0, index)


class _WideningLinear(torch.autograd.Function):
    """``x @ wᵀ`` (no bias) whose weight gradient is formed as ``(xᵀ g)ᵀ``: for a projection of
    many rows to more channels than it reads (``(P, 4) -> (P, 16)``) several times faster on CPU
    than autograd's ``gᵀ x`` (a BLAS product with few output columns), the same numbers."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return x @ w.T

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, w = ctx.saved_tensors
        gx = g @ w if ctx.needs_input_grad[0] else None
        gw = (x.T @ g).T if ctx.needs_input_grad[1] else None
        return gx, gw


def widening_linear(x: torch.Tensor, lin: nn.Linear) -> torch.Tensor:
    """``lin(x)`` for a bias-free ``lin`` on ``x (P, d_in)``; by :class:`_WideningLinear` on CPU
    outside autocast, else the module itself."""
    if x.device.type != "cpu" or autocasting(x) or x.dim() != 2 or lin.bias is not None:
        return lin(x)
    return _WideningLinear.apply(x, lin.weight)


class RelationalAttention(nn.Module):
    """Multi-head attention of each node over the pairs it starts, edge states in q, k and v
    (NG's ``RTAttention`` with ``modulate_v``).

    Shapes:
        ``h (N, d)``, ``e (P, d_edge)`` on :class:`NodePairs` -> ``(N, d)``.
    """

    def __init__(self, d: int, d_edge: int, d_attn: int, n_heads: int) -> None:
        super().__init__()
        if d_attn % n_heads:
            raise ValueError(f"attention width {d_attn} is not a multiple of {n_heads} heads")
        self.h, self.dh, self.scale = n_heads, d_attn // n_heads, d_attn ** -0.5
        self.qkv_node = nn.Linear(d, 3 * d_attn, bias=False)
        # One projection per role (not one 4x wider, split): contiguous (P, d_attn) results
        # whose backward needs no stacking, the costly part on CPU.
        self.q_edge, self.k_edge, self.v_edge, self.v_mod = (
            nn.Linear(d_edge, d_attn, bias=False) for _ in range(4))
        self.out = nn.Linear(d_attn, d)

    def forward(self, h: torch.Tensor, e: torch.Tensor, pairs: NodePairs) -> torch.Tensor:
        """Attend from every node over the pairs ``(i, ·)``; return the projected messages."""
        n, p = h.shape[0], e.shape[0]
        qn, kn, vn = self.qkv_node(h).chunk(3, dim=-1)
        q = (qn.index_select(0, pairs.first) + widening_linear(e, self.q_edge)).view(p, self.h, self.dh)
        k = (kn.index_select(0, pairs.second) + widening_linear(e, self.k_edge)).view(p, self.h, self.dh)
        v = vn.index_select(0, pairs.second) * widening_linear(e, self.v_mod) + widening_linear(e, self.v_edge)
        # Product and sum on the (P, H, dh) views: the sum's expanded gradient then meets no
        # reshape (which would copy it) in the backward.
        dots = (q * k).sum(-1)
        attn = segment_softmax(self.scale * dots, pairs.first, n)  # (P, H)
        msg = (attn.unsqueeze(-1) * v.view(p, self.h, self.dh)).view(p, -1)
        return self.out(msg.new_zeros(n, msg.shape[1]).index_add(0, pairs.first, msg))


def narrow_layer_norm(x: torch.Tensor, ln: nn.LayerNorm) -> torch.Tensor:
    """``ln(x)`` over the last dimension, from elementwise ops: for the pair states' few
    channels (``(P, 4)``) faster on CPU, forward and backward, than the per-row fused kernel.
    Elsewhere, and under autocast (whose own LayerNorm precision then holds), ``ln(x)`` itself."""
    if x.device.type != "cpu" or autocasting(x):
        return ln(x)
    xc = x - x.mean(-1, keepdim=True)
    return xc * torch.rsqrt((xc * xc).mean(-1, keepdim=True) + ln.eps) * ln.weight + ln.bias


def _mlp(d_in: int, d_hid: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hid, bias=False), nn.GELU(), nn.Linear(d_hid, d_out),
                         nn.Dropout(dropout))


class RTLayer(nn.Module):
    """One relational transformer layer (NG's ``RTLayer``): attention and MLP on the nodes, each
    with a residual and LayerNorm; then, unless ``edge_update=False``, the pair states updated
    from ``(e_ij, e_ji, h_i, h_j)`` and an MLP, each with a residual and LayerNorm.

    Shapes:
        ``h (N, d)``, ``e (P, d_edge)`` -> ``(N, d)``, ``(P, d_edge)``.
    """

    def __init__(self, d: int, d_edge: int, *, d_attn: int, d_node_hid: int, d_edge_hid: int,
                 n_heads: int, dropout: float, edge_update: bool) -> None:
        super().__init__()
        self.attn = RelationalAttention(d, d_edge, d_attn, n_heads)
        self.lin0 = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)
        self.ln0, self.ln1 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.node_mlp = _mlp(d, d_node_hid, d, dropout)
        self.edge_update = edge_update
        if edge_update:
            self.e_pair = nn.Linear(2 * d_edge, d_edge_hid)
            self.e_src = nn.Linear(d, d_edge_hid, bias=False)
            self.e_dst = nn.Linear(d, d_edge_hid, bias=False)
            self.e_out = nn.Sequential(nn.GELU(), nn.Linear(d_edge_hid, d_edge), nn.Dropout(dropout))
            self.edge_mlp = _mlp(d_edge, d_edge_hid, d_edge, dropout)
            self.eln0, self.eln1 = nn.LayerNorm(d_edge), nn.LayerNorm(d_edge)

    def forward(self, h: torch.Tensor, e: torch.Tensor, pairs: NodePairs) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the node states, then the pair states."""
        h = self.ln0(h + self.drop(self.lin0(self.attn(h, e, pairs))))
        h = self.ln1(h + self.node_mlp(h))
        if not self.edge_update:
            return h, e
        z = (self.e_pair(torch.cat([e, e.index_select(0, pairs.reverse)], dim=-1))
             + self.e_src(h).index_select(0, pairs.first) + self.e_dst(h).index_select(0, pairs.second))
        e = narrow_layer_norm(e + self.e_out(z), self.eln0)
        e = narrow_layer_norm(e + self.edge_mlp(e), self.eln1)
        return h, e
