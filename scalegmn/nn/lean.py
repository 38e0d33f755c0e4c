"""Memory-lean autograd for the per-edge gated blocks (same math, fewer saved activations).

The two per-edge blocks of a ScaleGMN layer are gated MLPs::

    ScaleEq (hidden rows):  out = Γ x ⊙ φ₂(SiLU(LN(φ₁([τ(x) ‖ a]))))
    EdgeUpdate:             out = Γ e ⊙ φ₂(SiLU(LN(pre)))          (pre built per node)

Plain autograd keeps about a dozen ``(E, d)`` tensors per block for backward (τ's hidden
activations, both LayerNorm inputs and outputs, the SiLU outputs, both gate factors); at batch
128 of MNIST INRs one such tensor is 73 MB. These functions keep only the block inputs and
the pre-activation ``pre`` of φ's hidden layer, and rebuild the rest in backward from them.
Forward and backward run in row chunks of ``CHUNK_ROWS`` (1024 rows x d channels: the
intermediates of one chunk stay in the CPU's L2 cache, and at d = 128 a chunk tensor (512 kB)
stays below the 1 MB mmap threshold the benchmark runs with: 2048 rows doubled the step time).

What a message block does per chunk instead of per edge (each (E, d) tensor a block creates
costs a fresh allocation, its page faults and a pass over memory; with
MALLOC_MMAP_THRESHOLD_=1MB an 18 MB tensor costs ~8 ms before any arithmetic):

- the block input ``x = Γ_e ẽ ⊙ Γ_v h[sender]`` of ReScaleEq (``ẽ = e / ‖e‖²`` for backward
  messages) is built from ``e`` and the per-node ``Γ_v h`` and never stored;
- the node PE of ``a`` enters as φ₁'s projection per node, gathered per chunk;
- messages are summed at their receiving node per chunk (``index_add_``);
- backward is written by hand (LayerNorm and SiLU through their ATen backward kernels) instead
  of rebuilding a graph per chunk, and for ``tau="sym"`` τ's second Linear and φ₁ are applied
  as one product (two adjacent linear maps): one matmul less per edge in forward, three in
  backward (the gradients of both weights follow from Σ gpre^T s).

A bidirectional MNIST training step (batch 32, 1 thread) took 40% less CPU time than the
previous lean path, the forward preset's 25% less (issue 4, H6 report). Results and gradients
equal plain autograd's up to float rounding (tests/model/test_lean.py, test_lean_fused.py);
symmetry is untouched because the computation is the same.

Used only where recomputation is exact: no dropout inside the MLPs, τ without per-graph mixing
(:func:`lean_supported`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scalegmn.nn.precision import autocasting, fp32, fp32_scope

CHUNK_ROWS = 1024  # read at call time (tests shrink it)
ACCELERATOR_CHUNK_ROWS = 1 << 18
# Per-edge (E, d) tensors plain autograd keeps per layer (sign/sym forward layer, counted):
# used to estimate whether a batch needs the lean path.
PLAIN_TENSORS_PER_LAYER = 18
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("lean_active", default=True)


@contextlib.contextmanager
def lean_scope(active: bool):
    """Blocks with ``lean = True`` use the lean path only inside an active scope (default on)."""
    token = _ACTIVE.set(active)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def lean_active() -> bool:
    """True inside an active :func:`lean_scope` while autograd records a graph."""
    return _ACTIVE.get() and torch.is_grad_enabled()


def plain_activation_mb(n_layers: int, n_edges: int, d: int, itemsize: int) -> float:
    """Estimated per-edge activation memory plain autograd keeps for one training step."""
    return n_layers * PLAIN_TENSORS_PER_LAYER * n_edges * d * itemsize / 2**20


def _chunks(n: int, device: torch.device) -> list[slice]:
    # Cache-sized chunks help CPUs; on GPUs small chunks only add kernel launches.
    size = CHUNK_ROWS if device.type == "cpu" else max(CHUNK_ROWS, ACCELERATOR_CHUNK_ROWS)
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def _params(*modules: nn.Module) -> list[torch.Tensor]:
    return [p for m in modules for p in m.parameters()]


# The forward forms are the modules' own (MLP.hidden, Tau.forward, Tau.rho_hidden), which are
# functional: no module is called inside an autograd Function (module hooks, e.g. those of
# FlopCounterMode, expect autograd-tracked inputs). Only the backward formulas live here.


def lean_supported(eq_module) -> bool:
    """Whether the lean path computes exactly what the module computes (no RNG, no mixing)."""
    inv = getattr(eq_module, "inv", None)
    mlps = [eq_module.phi] if inv is None else [inv.phi]
    tau = eq_module.tau if inv is None else inv.tau
    if inv is not None and inv.phi_scale is not None:
        return False
    if tau.symmetry == "hetero":
        return False
    if tau.rho is not None:
        mlps.append(tau.rho)
    return all(isinstance(m.dropout, nn.Identity) for m in mlps)


@dataclass(frozen=True, eq=False)
class ScaleEqRows:
    """The static (non-differentiated) parts of one :class:`_ScaleEqHidden` call.

    Attributes:
        block: the ScaleEq whose hidden rows are computed.
        params: the parameters whose gradients backward returns, in order (passed again as
            the Function's trailing inputs so autograd routes their gradients).
        rescale: with a ReScaleEq, rows are built as ``Γ_e edge_map(e) ⊙ hv[sender]``.
        edge_map: a row-wise map of ``e`` (e.g. inverse_edge), or None.
        index: ``(R,)`` node row of each row's ``proj`` (with ``proj``).
        sender: ``(R,)`` node row of each row's ``hv`` (with ``rescale``).
        receiver: ``(R,)`` node row each result is summed at, or None (one result per row).
        n_nodes: number of node rows of the summed result (with ``receiver``).
    """

    block: nn.Module
    params: list[torch.Tensor]
    rescale: nn.Module | None = None
    edge_map: Callable[[torch.Tensor], torch.Tensor] | None = None
    index: torch.Tensor | None = None
    sender: torch.Tensor | None = None
    receiver: torch.Tensor | None = None
    n_nodes: int = 0


class _ScaleEqHidden(torch.autograd.Function):
    """``Γ x ⊙ φ([τ(x) ‖ a])``; saves ``x``, ``a`` and φ's pre-activation only.

    ``apply(rows, x, a, proj, e, hv, *rows.params)`` with ``rows`` a :class:`ScaleEqRows`.
    ``proj = a W_a^T`` per node (:meth:`ScaleInv.project_extra`) with ``rows.index`` replaces
    ``a`` when given: row r adds ``proj[index[r]]`` to its pre-activation, gathered per chunk
    (never in full), and the pre-activation's gradient is scattered back per chunk.

    With ``rows.rescale`` (a ReScaleEq) the rows are given as ``x = Γ_e e ⊙ hv[sender]``
    instead (``hv = Γ_v h`` per node, ``x`` None): ``x`` is built per chunk and never kept or
    materialised in full. With ``rows.receiver`` the result is summed per node,
    ``(n_nodes, d_out)``, per chunk: the per-row messages are never materialised either.
    """

    @staticmethod
    def forward(ctx, rows: ScaleEqRows, x, a, proj, e, hv, *flat):
        block, index, receiver = rows.block, rows.index, rows.receiver
        inv = block.inv
        src = _RowSource(x, rows.rescale, rows.edge_map, e, hv, rows.sender)
        k = src.width
        w1, b1 = inv.phi.first.weight, inv.phi.first.bias
        rho = _rho(inv.tau)
        if rho is not None:
            # τ's second Linear and φ's first are adjacent linear maps: apply their product.
            w_s, b_s = _rho_phi_linear(rho, w1[:, :k], b1)
        if receiver is None:
            out = src.new_empty(block.d_out)
        else:
            out = src.new_zeros(block.d_out, rows=rows.n_nodes)
        pre = src.new_empty(w1.shape[0])
        for sl in _chunks(src.rows, src.device):
            xc = src.chunk(sl)
            if rho is not None:
                p = F.linear(inv.tau.rho_hidden(xc), w_s, b_s)
            else:
                p = F.linear(inv.tau.forward(xc), w1[:, :k], b1)
            if a is not None:
                p = p + a[sl] @ w1[:, k:].T
            if proj is not None:
                p += proj.index_select(0, index[sl])
            pre[sl] = p
            msg = F.linear(xc, block.gamma.weight) * inv.phi.hidden(p)
            if receiver is None:
                out[sl] = msg
            else:
                out.index_add_(0, receiver[sl], msg)
        ctx.rows = rows
        ctx.save_for_backward(x, a, pre, proj, e, hv)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        rows = ctx.rows
        block, index, receiver = rows.block, rows.index, rows.receiver
        x, a, pre, proj, e, hv = ctx.saved_tensors
        src = _RowSource(x, rows.rescale, rows.edge_map, e, hv, rows.sender)
        inv = block.inv
        phi, gamma = inv.phi, block.gamma.weight
        k = src.width
        w1 = phi.first.weight
        rho = _rho(inv.tau)
        acc = _Grads(rows.params)
        grad_a = None if a is None else torch.empty_like(a)
        grad_proj = None if proj is None else torch.zeros_like(proj)
        if rho is not None:
            w_s = w1[:, :k] @ rho.second.weight  # gradient of s through τ's second Linear and φ's
            g_s_total = w1.new_zeros(w_s.shape)  # Σ gpre^T s
        for sl in _chunks(src.rows, src.device):
            xc = src.chunk(sl, for_backward=True)
            pc = pre[sl]
            gc = grad_out[sl] if receiver is None else grad_out.index_select(0, receiver[sl])
            gx, gpre = _gate_backward(gamma, phi, xc, pc, gc, acc)
            if rho is not None:
                s, u, z_pos, z_neg, n_pos, n_neg, st_pos, st_neg = _rho_hidden(rho, xc)
                g_s_total += gpre.T @ s
                gs = gpre @ w_s
                gz_pos = _norm_backward(rho.norm, rho.activation_backward(gs, n_pos), z_pos,
                                        st_pos, acc)
                gz_neg = _norm_backward(rho.norm, rho.activation_backward(gs, n_neg), z_neg,
                                        st_neg, acc)
                gu = gz_pos - gz_neg
                acc.add(rho.first.bias, gz_pos.sum(0) + gz_neg.sum(0))
                acc.add_mm(rho.first.weight, gu.T, xc)
                gx = torch.addmm(gx, gu, rho.first.weight)
            else:
                tau_params = _params(inv.tau)
                with torch.enable_grad():
                    xt = xc.detach().requires_grad_()
                    t = inv.tau.forward(xt)
                    if tau_params or t.requires_grad:
                        gt = torch.autograd.grad(t, [xt, *tau_params], gpre @ w1[:, :k],
                                                 allow_unused=True)
                        gx = gx + gt[0]
                        for p, g in zip(tau_params, gt[1:], strict=True):
                            if g is not None:
                                acc.add(p, g)
                acc.add_mm(w1, gpre.T, t.detach(), cols=slice(0, k))
            src.backward(sl, gx)
            if a is not None:
                grad_a[sl] = gpre @ w1[:, k:]
                acc.add_mm(w1, gpre.T, a[sl], cols=slice(k, None))
            if grad_proj is not None:
                grad_proj.index_add_(0, index[sl], gpre)
            acc.add(phi.first.bias, gpre.sum(0))
        if rho is not None:
            # t = s W2^T + 2 b2 and pre = t W1^T + ...: the gradients of W2, b2 and W1's τ part
            # from Σ gpre^T s and Σ gpre.
            w1t, w2, b2 = w1[:, :k], rho.second.weight, rho.second.bias
            gsum = acc.get(phi.first.bias)
            acc.add_mm(w1, g_s_total, w2.T, cols=slice(0, k))
            acc.add(w1, 2 * torch.outer(gsum, b2), cols=slice(0, k))
            acc.add_mm(w2, w1t.T, g_s_total)
            acc.add(b2, 2 * (gsum @ w1t))
        if rows.rescale is not None:
            acc.add(rows.rescale.gamma_e.weight, src.grad_we)
        return (None, src.grad_x, grad_a, grad_proj, src.grad_e, src.grad_hv, *acc.result())


def _gate_backward(gamma: torch.Tensor, phi, xc: torch.Tensor, pc: torch.Tensor,
                   gc: torch.Tensor, acc: _Grads) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``out = (xc Γ^T) ⊙ φ₂(SiLU(LN(pc)))`` for ``gc = ∂L/∂out``, by hand (no
    graph rebuilt): returns ``(∂L/∂xc, ∂L/∂pc)`` and adds the parameters' to ``acc``."""
    gx_lin = F.linear(xc, gamma)
    n_p, stats_p = _norm_stats(phi.norm, pc)
    h1 = phi.activation(n_p)
    hid = F.linear(h1, phi.second.weight, phi.second.bias)
    g_hid = gc * gx_lin
    g_gamma = gc * hid
    acc.add_mm(phi.second.weight, g_hid.T, h1)
    acc.add(phi.second.bias, g_hid.sum(0))
    g_np = phi.activation_backward(g_hid @ phi.second.weight, n_p)
    gpre = _norm_backward(phi.norm, g_np, pc, stats_p, acc)
    acc.add_mm(gamma, g_gamma.T, xc)
    return g_gamma @ gamma, gpre


def _rho(tau):
    """τ's MLP ρ where τ(x) = ρ(x) + ρ(-x) (sign symmetry, tau="sym"), else None."""
    return tau.rho if tau.symmetry == "sign" and tau.rho is not None else None


def _rho_phi_linear(rho, w1t: torch.Tensor, b1: torch.Tensor):
    """``t W1^T + b1`` with ``t = s W2^T + 2 b2`` as one Linear of ``s``: ``(W1 W2, b1 + 2 W1 b2)``."""
    return w1t @ rho.second.weight, torch.addmv(b1, w1t, rho.second.bias, alpha=2)


def _norm_stats(norm, z: torch.Tensor):
    if isinstance(norm, nn.LayerNorm):
        out, mean, rstd = torch.ops.aten.native_layer_norm(z, norm.normalized_shape, norm.weight,
                                                           norm.bias, norm.eps)
        return out, (mean, rstd)
    return z, None


def _norm_backward(norm, g: torch.Tensor, z: torch.Tensor, stats, acc) -> torch.Tensor:
    if stats is None:
        return g
    gz, gw, gb = torch.ops.aten.native_layer_norm_backward(
        g, z, norm.normalized_shape, stats[0], stats[1], norm.weight, norm.bias,
        [True, norm.weight is not None, norm.bias is not None])
    if gw is not None:
        acc.add(norm.weight, gw)
    if gb is not None:
        acc.add(norm.bias, gb)
    return gz


def _rho_hidden(rho, x: torch.Tensor):
    """:meth:`Tau.rho_hidden` ``s`` with what backward needs: the pre-activations, the
    LayerNorm outputs and statistics of both branches (``native_layer_norm``)."""
    u = x @ rho.first.weight.T
    z_pos = u + rho.first.bias
    z_neg = rho.first.bias - u
    n_pos, st_pos = _norm_stats(rho.norm, z_pos)
    n_neg, st_neg = _norm_stats(rho.norm, z_neg)
    s = rho.activation(n_pos) + rho.activation(n_neg)
    return s, u, z_pos, z_neg, n_pos, n_neg, st_pos, st_neg


class _Grads:
    """Gradient accumulators for a list of parameters (returned in their order).

    Products are added out of place (``add_(m1 @ m2)``, not ``addmm_``): FlopCounterMode, which
    the throughput benchmark uses, does not count in-place ``addmm_``.
    """

    def __init__(self, params):
        self.params = params
        self.grads: dict[int, torch.Tensor] = {}

    def _slot(self, p: torch.Tensor) -> torch.Tensor:
        if id(p) not in self.grads:
            self.grads[id(p)] = torch.zeros_like(p)
        return self.grads[id(p)]

    def get(self, p: torch.Tensor) -> torch.Tensor:
        return self._slot(p)

    def add(self, p: torch.Tensor, g: torch.Tensor, cols: slice | None = None) -> None:
        slot = self._slot(p)
        (slot if cols is None else slot[:, cols]).add_(g)

    def add_mm(self, p: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor,
               cols: slice | None = None) -> None:
        slot = self._slot(p)
        (slot if cols is None else slot[:, cols]).add_(m1 @ m2)

    def result(self) -> list:
        return [self.grads.get(id(p)) for p in self.params]


class _RowSource:
    """The rows ``x`` of :class:`_ScaleEqHidden`, stored or built per chunk as
    ``Γ_e edge_map(e) ⊙ hv[sender]`` (``edge_map`` row-wise, e.g. inverse_edge, or None);
    accumulates the gradients of whatever they were built from."""

    def __init__(self, x, rescale, edge_map, e, hv, sender):
        self.x, self.e, self.hv, self.sender = x, e, hv, sender
        self.edge_map = edge_map
        self.we = None if rescale is None else rescale.gamma_e.weight
        base = x if x is not None else e
        self.rows, self.device = base.shape[0], base.device
        self.width = x.shape[1] if x is not None else self.we.shape[0]
        self.grad_x = self.grad_e = self.grad_hv = self.grad_we = None

    def new_empty(self, width: int) -> torch.Tensor:
        base = self.x if self.x is not None else self.e
        return base.new_empty(self.rows, width)

    def new_zeros(self, width: int, rows: int) -> torch.Tensor:
        base = self.x if self.x is not None else self.e
        return base.new_zeros(rows, width)

    def chunk(self, sl: slice, for_backward: bool = False) -> torch.Tensor:
        if self.x is not None:
            if for_backward and self.grad_x is None:
                self.grad_x = torch.empty_like(self.x)
            return self.x[sl]
        ec = self.e[sl]
        if self.edge_map is not None:
            if for_backward:  # keep the chunk's small graph of edge_map for its gradient
                with torch.enable_grad():
                    self._e_leaf = ec.detach().requires_grad_()
                    self._e_mapped = self.edge_map(self._e_leaf)
                ec = self._e_mapped.detach()
            else:
                ec = self.edge_map(ec)
        ee = F.linear(ec, self.we)
        hs = self.hv.index_select(0, self.sender[sl])
        if for_backward:
            self._ee, self._hs, self._ec = ee, hs, ec
            if self.grad_e is None:
                self.grad_e = torch.empty_like(self.e)
                self.grad_hv = torch.zeros_like(self.hv)
                self.grad_we = torch.zeros_like(self.we)
        return ee * hs

    def backward(self, sl: slice, gx: torch.Tensor) -> None:
        if self.x is not None:
            self.grad_x[sl] = gx
            return
        g_ee = gx * self._hs
        self.grad_hv.index_add_(0, self.sender[sl], gx * self._ee)
        self.grad_we += g_ee.T @ self._ec
        if self.edge_map is None:
            torch.mm(g_ee, self.we, out=self.grad_e[sl])
        else:
            self.grad_e[sl] = torch.autograd.grad(self._e_mapped, self._e_leaf, g_ee @ self.we)[0]


class _GatedHidden(torch.autograd.Function):
    """``Γ y ⊙ φ₂(SiLU(LN(pre)))`` with ``pre = a[ia] + b[ib]`` built per chunk from per-node
    parts; saves ``y`` and the node parts only."""

    @staticmethod
    def forward(ctx, gamma, phi, y, a, b, ia, ib, *params):
        out = y.new_empty(y.shape[0], gamma.weight.shape[0])
        for sl in _chunks(y.shape[0], y.device):
            pre = a.index_select(0, ia[sl]) + b.index_select(0, ib[sl])
            out[sl] = F.linear(y[sl], gamma.weight) * phi.hidden(pre)
        ctx.gamma, ctx.phi = gamma, phi
        ctx.save_for_backward(y, a, b, ia, ib)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        y, a, b, ia, ib = ctx.saved_tensors
        acc = _Grads(_params(ctx.gamma, ctx.phi.norm, ctx.phi.second))
        grad_y, grad_a, grad_b = torch.empty_like(y), torch.zeros_like(a), torch.zeros_like(b)
        for sl in _chunks(y.shape[0], y.device):
            pre = a.index_select(0, ia[sl]) + b.index_select(0, ib[sl])
            gy, gpre = _gate_backward(ctx.gamma.weight, ctx.phi, y[sl], pre, grad_out[sl], acc)
            grad_y[sl] = gy
            grad_a.index_add_(0, ia[sl], gpre)
            grad_b.index_add_(0, ib[sl], gpre)
        return (None, None, grad_y, grad_a, grad_b, None, None, *acc.result())


def _apply(function, anchor: torch.Tensor, *args):
    """``function.apply(*args)``; under bf16 autocast in float32 (tensors cast, autocast off):
    the hand-written backward computes in float32 and its saved tensors must match it."""
    if not autocasting(anchor):
        return function.apply(*args)
    with fp32_scope(anchor):
        return function.apply(*(fp32(a) if isinstance(a, torch.Tensor) else a for a in args))


def scale_eq_hidden(block, x: torch.Tensor, a: torch.Tensor | None,
                    proj: torch.Tensor | None = None, index: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """``block.gamma(x) * block.inv(x, a, None, proj[index])`` with lean autograd."""
    rows = ScaleEqRows(block, _params(block.gamma, block.inv.tau, block.inv.phi), index=index)
    return _apply(_ScaleEqHidden, x, rows, x, a, proj, None, None, *rows.params)


def rescaled_scale_eq_hidden(block, rescale, e: torch.Tensor, hv: torch.Tensor,
                             sender: torch.Tensor, a: torch.Tensor | None,
                             proj: torch.Tensor | None = None,
                             index: torch.Tensor | None = None,
                             receiver: torch.Tensor | None = None, n_nodes: int = 0,
                             edge_map=None) -> torch.Tensor:
    """:func:`scale_eq_hidden` of ``x = rescale.gamma_e(edge_map(e)) * hv[sender]``
    (``hv = Γ_v h``; ``edge_map`` row-wise or None), without keeping or materialising ``x``
    or ``edge_map(e)``; with ``receiver``, summed per receiving node (``(n_nodes, d_out)``)."""
    params = [*_params(block.gamma, block.inv.tau, block.inv.phi), rescale.gamma_e.weight]
    rows = ScaleEqRows(block, params, rescale=rescale, edge_map=edge_map, index=index,
                       sender=sender, receiver=receiver, n_nodes=n_nodes)
    return _apply(_ScaleEqHidden, e, rows, None, a, proj, e, hv, *params)


def gated_hidden(gamma: nn.Linear, phi, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                 ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """``gamma(y) * phi.hidden(a[ia] + b[ib])`` with lean autograd (``pre`` never kept)."""
    return _apply(_GatedHidden, y, gamma, phi, y, a, b, ia, ib, *_params(gamma, phi.norm, phi.second))
