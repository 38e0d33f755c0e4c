"""The fused message paths equal the plain composition they replace (float64, with controls).

- ``ScaleEq(..., a_index=...)``: per-node ``a`` read through a row index (hidden rows add the
  per-node projection of ``a``) equals ScaleEq on the gathered rows ``a[a_index]``.
- ``ScaleEq.forward_rescaled(..., receiver=...)``: the lean path that builds
  ``Γ_e e ⊙ Γ_v h[sender]`` and sums the messages per chunk equals
  ``sum_at(ScaleEq(ReScaleEq(e, h, with_sender)))``, outputs and every gradient.
"""

from __future__ import annotations

import pytest
import torch

from scalegmn.nn import (
    EdgeUpdate,
    ReScaleEq,
    ScaleEq,
    Tau,
    from_weight_batch,
    inverse_edge,
    lean,
)
from scalegmn.nn.lean import lean_scope
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import NetworkSpec
from scalegmn.weightspace.testing import random_network

D = 5


pytestmark = pytest.mark.usefixtures("float64_default")


def graph():
    spec = NetworkSpec((2, 4, 3, 2), ("tanh", "tanh", "identity"))
    net = random_network(spec, (3,), dtype=torch.float64)
    return from_weight_batch(WeightBatch(net), 1.0)


def blocks(symmetry: str, tau: str, layer_norm: bool = True):
    torch.manual_seed(1)
    rescale = ReScaleEq(D, D, D)
    block = ScaleEq(D, D, D, Tau(D, symmetry, tau, d_hid=6, layer_norm=layer_norm), d_hid=6,
                    layer_norm=layer_norm)
    for p in [*rescale.parameters(), *block.parameters()]:  # non-trivial LN affine parameters
        torch.nn.init.normal_(p, std=0.7)
    return rescale, block


def inputs(g, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    e = torch.randn(g.edge_value.shape[0], D, generator=gen).requires_grad_()
    h = torch.randn(g.num_nodes, D, generator=gen).requires_grad_()
    pe = torch.randn(g.num_nodes, D, generator=gen).requires_grad_()
    return e, h, pe


def value_and_grads(fn, tensors, params):
    out = fn()
    weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    grads = torch.autograd.grad((out * weights).sum(), [*tensors, *params], allow_unused=True)
    return out.detach(), grads


def assert_same(a, b):
    out_a, grads_a = a
    out_b, grads_b = b
    torch.testing.assert_close(out_b, out_a)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        if ga is None or gb is None:
            assert (ga is None or float(ga.abs().max()) == 0) and (gb is None or float(gb.abs().max()) == 0)
        else:
            torch.testing.assert_close(gb, ga)


CASES = [("sign", "sym", True), ("sign", "sym", False), ("sign", "abs", True), ("scale", "abs", True)]


@pytest.mark.parametrize(("symmetry", "tau", "layer_norm"), CASES)
@pytest.mark.parametrize("lean_on", [False, True])
def test_a_index_equals_gathered_rows(symmetry, tau, layer_norm, lean_on, monkeypatch):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 7)
    g = graph()
    _, block = blocks(symmetry, tau, layer_norm)
    block.lean = lean_on
    groups = g.groups("fwd")
    e, h, pe = inputs(g)
    params = list(block.parameters())
    with lean_scope(True):
        gathered = value_and_grads(lambda: block(e, pe.index_select(0, g.src), None, groups),
                                   [e, pe], params)
        indexed = value_and_grads(lambda: block(e, pe, None, groups, g.src), [e, pe], params)
        assert_same(gathered, indexed)
        # Control: another row -> node index (targets instead of sources) changes the result.
        other = block(e, pe, None, groups, g.dst).detach()
    assert float((other - indexed[0]).abs().max()) > 1e-6


@pytest.mark.parametrize(("symmetry", "tau", "layer_norm"), CASES)
@pytest.mark.parametrize(("direction", "edge_map"), [("fwd", None), ("bwd", None),
                                                     ("bwd", inverse_edge)])
def test_fused_lean_messages_equal_plain_composition(symmetry, tau, layer_norm, direction,
                                                     edge_map, monkeypatch):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 7)  # many chunks, a ragged last one
    g = graph()
    rescale, block = blocks(symmetry, tau, layer_norm)
    if direction == "fwd":
        sender, receiver, with_sender, sum_at = g.src, g.dst, g.with_src, g.sum_at_dst
    else:
        sender, receiver, with_sender, sum_at = g.dst, g.src, g.with_dst, g.sum_at_src
    groups = g.groups(direction)
    e, h, pe = inputs(g)
    params = [*rescale.parameters(), *block.parameters()]

    def plain():
        rows = rescale(e if edge_map is None else edge_map(e), h, with_sender)
        return sum_at(block(rows, pe.index_select(0, sender), None, groups))

    def fused(e=e, h=h):
        return block.forward_rescaled(rescale, e, h, sender, pe, None, groups, sender, receiver,
                                      edge_map)

    block.lean = rescale.lean = True
    with lean_scope(True):
        assert lean.lean_supported(block)
        reference = value_and_grads(plain, [e, h, pe], params)
        assert_same(reference, value_and_grads(fused, [e, h, pe], params))
        # Control: a different edge state changes outputs and gradients.
        e2 = (e.detach() + 0.3 * torch.randn_like(e)).requires_grad_()
        changed = value_and_grads(lambda: fused(e=e2), [e2, h, pe], params)
    assert float((changed[0] - reference[0]).abs().max()) > 1e-6
    assert float((changed[1][3] - reference[1][3]).abs().max()) > 1e-6  # Γ_e weight


@pytest.mark.parametrize("tau", ["abs", "sym"])
@pytest.mark.parametrize("edge_map", [None, inverse_edge])
def test_fused_lean_function_passes_gradcheck(tau, edge_map, monkeypatch):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 4)
    torch.manual_seed(0)
    rescale, block = blocks("sign", tau)
    rows, nodes = 11, 4
    e = torch.randn(rows, D, requires_grad=True)
    hv = torch.randn(nodes, D, requires_grad=True)
    proj = torch.randn(nodes, 6, requires_grad=True)
    sender = torch.randint(0, nodes, (rows,))
    receiver = torch.randint(0, nodes, (rows,))
    index = torch.randint(0, nodes, (rows,))
    params = [*lean._params(block.gamma, block.inv.tau, block.inv.phi), rescale.gamma_e.weight]
    static = lean.ScaleEqRows(block, params, rescale=rescale, edge_map=edge_map, index=index,
                              sender=sender, receiver=receiver, n_nodes=nodes)
    assert torch.autograd.gradcheck(
        lambda e, hv, proj, *p: lean._ScaleEqHidden.apply(static, None, None, proj, e, hv, *p),
        (e, hv, proj, *params))


@pytest.mark.parametrize("tau", ["abs", "sym"])
@pytest.mark.parametrize("swapped", [False, True])
def test_lean_edge_update_equals_plain(tau, swapped, monkeypatch):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 7)
    g = graph()
    torch.manual_seed(2)
    edge = EdgeUpdate(D, D, Tau(D, "sign", tau, d_hid=6), d_hid=6, layer_norm=True, dropout=0.0)
    for p in edge.parameters():
        torch.nn.init.normal_(p, std=0.7)
    e, h, _ = inputs(g)
    params = list(edge.parameters())
    if swapped:  # backward edges: the "source" part is read at the target
        pair, ends = (lambda a, b: g.src_plus_dst(b, a)), (g.dst, g.src)
    else:
        pair, ends = g.src_plus_dst, (g.src, g.dst)
    edge.lean = True
    with lean_scope(True):
        plain = value_and_grads(lambda: edge(h, e, pair, None), [e, h], params)
        fused = value_and_grads(lambda: edge(h, e, pair, None, ends), [e, h], params)
        assert_same(plain, fused)
        # Control: the other orientation is a different function.
        other = edge(h, e, pair, None, ends[::-1]).detach()
    assert float((other - plain[0]).abs().max()) > 1e-6
