"""NG-GNN's blocks (Neural Graphs, Kofinas et al., ICLR 2024, §3): the graph embedding and a PNA
layer with edge-feature modulation and edge updates, on a :class:`FlatGraph`, index-based.

Every operation reads the graph through ``src``/``dst`` (gathers) and ``index_add``/segment
aggregations at ``dst`` (scatters), so a block runs on any batch of graphs, one architecture or
many. Group action: permutations of hidden neurons only. A permutation relabels nodes and
edges consistently, types are shared within a hidden layer, so every block is permutation
equivariant; nothing here respects sign flips or positive scaling (weights enter through
random Fourier features and biased linear maps).

- :class:`FourierFeatures`: ``γ(x) = [cos 2π x Bᵀ, sin 2π x Bᵀ]``, ``B ~ N(0, σ²)`` fixed
  (NG's ``GaussianEncoding``; ``σ = 0``: the identity, then a linear embedding follows).
- :class:`PNALayer`: ``m_{j→i} = s_{ji} ⊙ (A h_i + B h_j + c) + t_{ji}`` with
  ``(s, t) = Lin(e_{ji})`` (NG's ``modulate_edges``);
  ``h_i' = Lin(Lin([h_i ‖ ⊕_j m_{j→i}]))``, ``⊕`` = {mean, min, max, std} × {identity,
  amplification} (PNA's aggregators and degree scalers, as PyG's ``DegreeScalerAggregation``).
- :class:`NGEdgeUpdate`: ``e_{ji}' = Lin(SiLU(Lin e_{ji} + Lin h_j + Lin h_i))`` (NG's ``EdgeMLP``;
  replaces the edge state, no residual, as NG).

Shapes: node states ``(N, d)``, edge states ``(E, d_e)``, ``src``/``dst`` ``(E,)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: NG's PNA aggregators and degree scalers (experiments/*/configs/model/pna.yaml).
AGGREGATORS = ("mean", "min", "max", "std")
SCALERS = ("identity", "amplification")
#: Number of random frequencies of the Fourier features (NG's ``sin_emb_dim``).
N_FREQUENCIES = 128
#: Rows whose Fourier features are built at once (8,192 x 256 floats: 8 MB).
FOURIER_CHUNK_ROWS = 8192


class FourierFeatures(nn.Module):
    """Random Fourier features of ``d_in`` scalars: ``(*, d_in) -> (*, 2 * n_freq)``; with
    ``sigma = 0`` the identity ``(*, d_in) -> (*, d_in)``. ``B`` is a buffer (saved with the model)."""

    def __init__(self, d_in: int, sigma: float, n_freq: int = N_FREQUENCIES) -> None:
        super().__init__()
        self.sigma = float(sigma)
        self.d_out = 2 * n_freq if sigma > 0 else d_in
        freq = torch.randn(n_freq, d_in) * sigma if sigma > 0 else torch.zeros(0, d_in)
        self.register_buffer("freq", freq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[cos 2π x Bᵀ, sin 2π x Bᵀ]`` (or ``x`` when ``sigma = 0``)."""
        if self.sigma == 0:
            return x
        freq = self.freq.to(x.dtype)
        # One input (biases, forward-only weights): a broadcast product, the matmul's own value.
        v = 2 * math.pi * x * freq.T if freq.shape[1] == 1 else 2 * math.pi * x @ freq.T
        if torch.is_grad_enabled() and v.requires_grad:
            return torch.cat([torch.cos(v), torch.sin(v)], dim=-1)
        # No gradient to carry (the usual case: weights are data, B is fixed): write both halves
        # in place, sparing the copy of a concatenation (E x 256 floats: ~15 % of an NG-GNN step).
        n = v.shape[-1]
        out = v.new_empty(*v.shape[:-1], 2 * n)
        torch.cos(v, out=out[..., :n])
        torch.sin(v, out=out[..., n:])
        return out


class ValueEmbedding(nn.Module):
    """``Lin(γ(x))``: a weight or bias value (``(*, d_in)``) to a state ``(*, d_out)``."""

    def __init__(self, d_in: int, d_out: int, sigma: float) -> None:
        super().__init__()
        self.fourier = FourierFeatures(d_in, sigma)
        self.lin = nn.Linear(self.fourier.d_out, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(*, d_in) -> (*, d_out)``."""
        x = x.to(self.lin.weight.dtype)
        rows = x.reshape(-1, x.shape[-1])
        if (self.fourier.sigma == 0 or rows.shape[0] <= FOURIER_CHUNK_ROWS
                or (torch.is_grad_enabled() and x.requires_grad)):
            return self.lin(self.fourier(x))
        # The features of a row chunk at a time: the whole (E, 256) block of an INR batch is
        # over glibc's 32 MB mmap cap, so it was page-faulted in anew every step (1.7 M faults in
        # a table-1 NG-GNN job). Autograd keeps each chunk's features for the weight's gradient.
        out = torch.cat([self.lin(self.fourier(part)) for part in rows.split(FOURIER_CHUNK_ROWS)])
        return out.reshape(*x.shape[:-1], out.shape[-1])


def in_degree_histogram(dst: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """``deg[k]`` = number of nodes with ``k`` incoming edges (PNA's degree statistics)."""
    deg = torch.bincount(dst, minlength=n_nodes)
    return torch.bincount(deg)


class _SegmentMinMax(torch.autograd.Function):
    """``(min, max)`` of ``msg (E, d)`` over the rows sharing ``dst``, 0 where a node has none:
    ``scatter_reduce(..., include_self=False)`` on zeros, with the same gradient as PyTorch's
    (split evenly among ties, a zero start counted as a tie where the result is exactly 0) from
    a few gathers instead of its generic backward (gathers, scatters and copies of ``(E, d)``)."""

    @staticmethod
    def forward(ctx, msg: torch.Tensor, dst: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = dst.unsqueeze(-1).expand_as(msg)
        zeros = msg.new_zeros(n, msg.shape[1])
        lo = zeros.scatter_reduce(0, idx, msg, "amin", include_self=False)
        hi = zeros.scatter_reduce(0, idx, msg, "amax", include_self=False)
        ctx.save_for_backward(msg, dst, lo, hi)
        return lo, hi

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        msg, dst, *results = ctx.saved_tensors
        grad = None
        for g, r in zip(grads, results, strict=True):
            if g is None:
                continue
            hit = (msg == r.index_select(0, dst)).to(msg.dtype)
            count = (r == 0).to(msg.dtype).index_add_(0, dst, hit)  # ties (and the zero start)
            part = hit * (g / count).index_select(0, dst)
            grad = part if grad is None else grad + part
        return grad, None, None


def pna_aggregate(msg: torch.Tensor, dst: torch.Tensor, n: int, avg_deg_log: torch.Tensor) -> torch.Tensor:
    """PyG's ``DegreeScalerAggregation(AGGREGATORS, SCALERS)`` of ``msg (E, d)`` at ``dst``
    -> ``(n, 8 d)``: ``[mean, min, max, std]`` then the same times ``log(deg + 1) / avg_deg_log``.

    The same function as PyG's fused path (min/max 0 and std 0 at a node without messages,
    std ``sqrt(max(var, 1e-5))`` zeroed at the clamp), in fewer and cheaper ops: sums by
    ``index_add`` (backward: ``index_select``) instead of scatters with an expanded index, and
    min and max by :class:`_SegmentMinMax`.
    """
    deg = torch.bincount(dst, minlength=n).to(msg.dtype).unsqueeze(-1)
    count = deg.clamp(min=1)
    zeros = msg.new_zeros(n, msg.shape[1])
    mean = zeros.index_add(0, dst, msg) / count
    var = zeros.index_add(0, dst, msg * msg) / count - mean * mean
    std = var.clamp(min=1e-5).sqrt()
    std = std.masked_fill(std <= math.sqrt(1e-5), 0.0)
    lo, hi = _SegmentMinMax.apply(msg, dst, n)
    out = torch.cat([mean, lo, hi, std], dim=-1)
    return torch.cat([out, out * (torch.log(deg + 1) / avg_deg_log)], dim=-1)


class DegreeStatistics(nn.Module):
    """The in-degree statistics PNA's scalers normalise by, as buffers ``avg_deg_lin`` and
    ``avg_deg_log`` (mean ``deg`` and mean ``log(deg + 1)`` over the training graphs' nodes).

    The state PyG's ``DegreeScalerAggregation(..., deg)`` keeps, computed the same way (a test
    compares them), so checkpoints keep their keys; importing PyG for it cost each NG-GNN job
    about 2 s (PyG also imports ``torch._dynamo``).
    """

    def __init__(self, deg: torch.Tensor) -> None:
        super().__init__()
        deg = deg.to(torch.float)
        n = int(deg.sum())
        bins = torch.arange(deg.numel(), device=deg.device)
        self.register_buffer("avg_deg_lin", torch.full((1,), float((bins * deg).sum()) / n))
        self.register_buffer("avg_deg_log", torch.full((1,), float(((bins + 1).log() * deg).sum()) / n))


class PNALayer(nn.Module):
    """NG-GNN's message passing (NG's ``PNAConv`` with ``modulate_edges``), index-based.

    Args:
        d: node state width (in and out).
        d_edge: edge state width.
        deg: in-degree histogram of the graphs trained on (:func:`in_degree_histogram`); sets
            the amplification scaler's normalisation ``mean log(deg + 1)``.

    Shapes:
        ``h (N, d)``, ``e (E, d_edge)``, ``src``/``dst`` ``(E,)`` -> ``(N, d)``.
    """

    def __init__(self, d: int, d_edge: int, deg: torch.Tensor) -> None:
        super().__init__()
        self.film = nn.Linear(d_edge, 2 * d)
        self.pre_dst = nn.Linear(d, d)
        self.pre_src = nn.Linear(d, d, bias=False)
        self.aggr = DegreeStatistics(deg)
        self.post = nn.Linear((len(AGGREGATORS) * len(SCALERS) + 1) * d, d)
        self.lin = nn.Linear(d, d)

    def forward(self, h: torch.Tensor, e: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        """Aggregate the modulated messages at each edge's target and update every node."""
        scale, shift = self.film(e).chunk(2, dim=-1)
        # pre([h_i ‖ h_j]) computed per node, then gathered: E rows of d, not of 2d.
        msg = scale * (self.pre_dst(h).index_select(0, dst) + self.pre_src(h).index_select(0, src)) + shift
        # self.aggr holds the degree statistics; pna_aggregate computes PyG's aggregation.
        agg = pna_aggregate(msg, dst, h.shape[0], self.aggr.avg_deg_log)
        return self.lin(self.post(torch.cat([h, agg], dim=-1)))


class NGEdgeUpdate(nn.Module):
    """``e' = Lin(SiLU(Lin e + Lin h[src] + Lin h[dst]))`` (NG-GNN's edge update).

    Shapes:
        ``h (N, d)``, ``e (E, d_edge)`` -> ``(E, d_edge)``.
    """

    def __init__(self, d: int, d_edge: int) -> None:
        super().__init__()
        self.lin_e = nn.Linear(d_edge, d_edge)
        self.lin_s = nn.Linear(d, d_edge, bias=False)
        self.lin_t = nn.Linear(d, d_edge, bias=False)
        self.out = nn.Linear(d_edge, d_edge)

    def forward(self, h: torch.Tensor, e: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        """The new edge states from the old ones and both end nodes."""
        z = self.lin_e(e) + self.lin_s(h).index_select(0, src) + self.lin_t(h).index_select(0, dst)
        return self.out(F.silu(z))
