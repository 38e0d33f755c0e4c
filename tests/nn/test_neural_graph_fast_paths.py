"""The Neural Graphs layers' faster formulations compute the straightforward ones' function.

Each optimized block (NG-T's attention and layer, the pair-state LayerNorm, NG-GNN's PNA
aggregation and the Fourier features) is compared, outputs and gradients in float64 on random
inputs, with a plain reference: written out below as the layers were before their speed-ups, or
PyG's own ``DegreeScalerAggregation``. Tolerances are ``torch.testing``'s float64 defaults
(rtol 1e-7, atol 1e-7); the differences measured are below 1e-13 (op order only). Each test has a
control: an input change that is not a symmetry must move the output past the same tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch

from scalegmn.nn import neural_graph_layers
from scalegmn.nn.neural_graph_layers import (
    AGGREGATORS,
    SCALERS,
    DegreeStatistics,
    FourierFeatures,
    PNALayer,
    ValueEmbedding,
    pna_aggregate,
)
from scalegmn.nn.relational_attention import (
    NodePairs,
    RelationalAttention,
    RTLayer,
    narrow_layer_norm,
    widening_linear,
)

N_NODES, N_EDGES = 23, 60


def _graph(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, N_NODES, (N_EDGES,), generator=g), torch.randint(0, N_NODES, (N_EDGES,), generator=g)


def _pairs(kind: str, seed: int) -> NodePairs:
    src, dst = _graph(seed)
    if kind == "neighbours":
        return NodePairs.neighbours(src, dst, N_NODES)
    node_graph = torch.arange(N_NODES) % 3  # three graphs, nodes interleaved
    keep = node_graph[src] == node_graph[dst]
    src, dst = src[keep], dst[keep]
    return NodePairs.build(node_graph, 3, src, dst, node_graph[src])


def _reference_segment_softmax(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.empty_like(x)
    for i in range(n):
        rows = index == i
        if rows.any():
            out[rows] = torch.softmax(x[rows], dim=0)
    return out


def _reference_attention(m: RelationalAttention, h: torch.Tensor, e: torch.Tensor, pairs: NodePairs) -> torch.Tensor:
    """NG's relational attention, each term written out (the layer before its speed-ups)."""
    p = e.shape[0]
    qn, kn, vn = m.qkv_node(h).chunk(3, dim=-1)
    q = qn[pairs.first] + m.q_edge(e)
    k = kn[pairs.second] + m.k_edge(e)
    v = vn[pairs.second] * m.v_mod(e) + m.v_edge(e)
    dots = (q * k).view(p, m.h, m.dh).sum(-1) * m.scale
    attn = _reference_segment_softmax(dots, pairs.first, h.shape[0])
    msg = (attn.unsqueeze(-1) * v.view(p, m.h, m.dh)).reshape(p, -1)
    agg = torch.zeros(h.shape[0], msg.shape[1], dtype=h.dtype).index_add(0, pairs.first, msg)
    return m.out(agg)


def _reference_layer(layer: RTLayer, h: torch.Tensor, e: torch.Tensor, pairs: NodePairs):
    h = layer.ln0(h + layer.lin0(_reference_attention(layer.attn, h, e, pairs)))
    h = layer.ln1(h + layer.node_mlp(h))
    z = (layer.e_pair(torch.cat([e, e[pairs.reverse]], dim=-1)) + layer.e_src(h)[pairs.first]
         + layer.e_dst(h)[pairs.second])
    e = layer.eln0(e + layer.e_out(z))
    return h, layer.eln1(e + layer.edge_mlp(e))


def _inputs(pairs: NodePairs, d: int, d_edge: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N_NODES, d, generator=g, dtype=torch.float64, requires_grad=True)
    e = torch.randn(pairs.n_pairs, d_edge, generator=g, dtype=torch.float64, requires_grad=True)
    return h, e


def _outputs_and_grads(fn, *inputs: torch.Tensor, params: tuple[torch.Tensor, ...] = ()) -> list[torch.Tensor]:
    """The outputs, then the gradients of a random projection of them for inputs and params."""
    outs = fn(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    g = torch.Generator().manual_seed(7)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    return [*outs, *torch.autograd.grad(loss, (*inputs, *params))]


def _assert_all_close(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)


def _assert_some_differs(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert any(not torch.allclose(x, y, rtol=1e-7, atol=1e-7) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", ["neighbours", "all_nodes"])
def test_relational_attention_equals_reference(kind: str) -> None:
    torch.manual_seed(0)
    pairs = _pairs(kind, 1)
    m = RelationalAttention(6, 4, 8, 2).double()
    h, e = _inputs(pairs, 6, 4, 2)
    ps = tuple(m.parameters())
    fast = _outputs_and_grads(lambda a, b: m(a, b, pairs), h, e, params=ps)
    _assert_all_close(fast, _outputs_and_grads(lambda a, b: _reference_attention(m, a, b, pairs), h, e, params=ps))
    # control: pair states moved to other pairs (not a symmetry) change the result
    shuffled = torch.randperm(pairs.n_pairs, generator=torch.Generator().manual_seed(3))
    _assert_some_differs(fast, _outputs_and_grads(lambda a, b: m(a, b[shuffled], pairs), h, e, params=ps))


@pytest.mark.parametrize("kind", ["neighbours", "all_nodes"])
def test_rt_layer_equals_reference(kind: str) -> None:
    torch.manual_seed(0)
    pairs = _pairs(kind, 4)
    layer = RTLayer(6, 4, d_attn=8, d_node_hid=12, d_edge_hid=8, n_heads=2, dropout=0.0,
                    edge_update=True).double()
    for ln in (layer.eln0, layer.eln1):  # non-trivial affine LayerNorm parameters
        torch.nn.init.normal_(ln.weight)
        torch.nn.init.normal_(ln.bias)
    h, e = _inputs(pairs, 6, 4, 5)
    ps = tuple(layer.parameters())
    fast = _outputs_and_grads(lambda a, b: layer(a, b, pairs), h, e, params=ps)
    _assert_all_close(fast, _outputs_and_grads(lambda a, b: _reference_layer(layer, a, b, pairs), h, e, params=ps))
    # control: the reversed pairs relabelled at random (not a symmetry) change the edge update
    wrong = NodePairs(pairs.first, pairs.second, torch.randperm(pairs.n_pairs), pairs.edge_pair)
    _assert_some_differs(fast, _outputs_and_grads(lambda a, b: layer(a, b, wrong), h, e, params=ps))


def test_narrow_layer_norm_equals_layer_norm() -> None:
    torch.manual_seed(0)
    ln = torch.nn.LayerNorm(4).double()
    torch.nn.init.normal_(ln.weight)
    torch.nn.init.normal_(ln.bias)
    x = torch.randn(50, 4, dtype=torch.float64, requires_grad=True) * 3 + 1
    fast = _outputs_and_grads(lambda a: narrow_layer_norm(a, ln), x)
    _assert_all_close(fast, _outputs_and_grads(ln, x))
    # control: normalising over the rows instead of the channels differs
    _assert_some_differs(fast, _outputs_and_grads(lambda a: narrow_layer_norm(a.T, torch.nn.LayerNorm(50).double()).T, x))


def _pyg_aggregation(deg: torch.Tensor) -> torch.nn.Module:
    from torch_geometric.nn.aggr import DegreeScalerAggregation

    return DegreeScalerAggregation(list(AGGREGATORS), list(SCALERS), deg).double()


def test_degree_statistics_are_pygs() -> None:
    """The PNA layer's degree buffers are PyG's, bit for bit and under the same state-dict keys."""
    deg = torch.tensor([4, 10, 6, 3])
    ours, pyg = DegreeStatistics(deg), _pyg_aggregation(deg).float()
    assert ours.state_dict().keys() == pyg.state_dict().keys()
    for key, value in pyg.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)
    # control: another degree histogram gives other statistics
    assert not torch.equal(DegreeStatistics(torch.tensor([4, 10, 6, 30])).avg_deg_log, ours.avg_deg_log)


def test_pna_aggregate_equals_pyg() -> None:
    torch.manual_seed(0)
    src, dst = _graph(8)
    dst = dst % (N_NODES - 4)  # the last nodes receive no message: PyG's zeros there
    layer = PNALayer(6, 5, torch.tensor([4, 10, 6, 3])).double()
    pyg = _pyg_aggregation(torch.tensor([4, 10, 6, 3]))
    msg = torch.randn(N_EDGES, 6, dtype=torch.float64, requires_grad=True)
    msg_tied = msg.detach().clone()
    msg_tied[1] = msg_tied[0]  # identical messages: ties in min/max share the gradient
    dst_tied = dst.clone()
    dst_tied[1] = dst_tied[0]
    msg_zero = msg.detach().clone()  # a node whose max is exactly 0: PyTorch counts its zero
    at = dst == dst[2]                 # start as a tie, so must we
    msg_zero[at] = -msg_zero[at].abs()
    msg_zero[2] = 0.0
    for m, d in ((msg, dst), (msg_tied.requires_grad_(), dst_tied), (msg_zero.requires_grad_(), dst)):
        fast = _outputs_and_grads(lambda a, d=d: pna_aggregate(a, d, N_NODES, layer.aggr.avg_deg_log), m)
        ref = _outputs_and_grads(lambda a, d=d: pyg(a, index=d, dim_size=N_NODES, dim=0), m)
        _assert_all_close(fast, ref)
    # control: messages sent to other nodes (not a symmetry) change the aggregation
    moved = (dst + 1) % N_NODES
    _assert_some_differs(fast, _outputs_and_grads(
        lambda a: pna_aggregate(a, moved, N_NODES, layer.aggr.avg_deg_log), msg_tied))


@pytest.mark.parametrize("d_in", [1, 3])
@pytest.mark.parametrize("needs_grad", [False, True])
def test_fourier_features_equal_reference(d_in: int, needs_grad: bool) -> None:
    torch.manual_seed(0)
    ff = FourierFeatures(d_in, 2.0, n_freq=16)
    x = torch.randn(40, d_in, dtype=torch.float64, requires_grad=needs_grad)

    def reference(a: torch.Tensor) -> torch.Tensor:
        v = 2 * math.pi * a @ ff.freq.double().T
        return torch.cat([torch.cos(v), torch.sin(v)], dim=-1)

    fast = ff(x)
    torch.testing.assert_close(fast, reference(x))
    if needs_grad:
        _assert_all_close(_outputs_and_grads(ff, x), _outputs_and_grads(reference, x))
    # control: other frequencies give other features
    other = FourierFeatures(d_in, 2.0, n_freq=16)
    assert not torch.allclose(other(x), fast, rtol=1e-7, atol=1e-7)



@pytest.mark.parametrize("d_in", [1, 3])
def test_value_embedding_in_row_chunks_equals_whole(d_in: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows embedded a chunk at a time: the same outputs and parameter gradients as at once."""
    torch.manual_seed(0)
    emb = ValueEmbedding(d_in, 5, 2.0).double()
    x = torch.randn(4, 10, d_in, dtype=torch.float64)  # 40 rows

    def outputs_and_grads() -> list[torch.Tensor]:
        emb.zero_grad()
        out = emb(x)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        return [out.detach()] + [p.grad.clone() for p in emb.parameters()]

    whole = outputs_and_grads()
    monkeypatch.setattr(neural_graph_layers, "FOURIER_CHUNK_ROWS", 16)  # chunks of 16, 16 and 8 rows
    chunked = outputs_and_grads()
    assert chunked[0].shape == (4, 10, 5)
    _assert_all_close(chunked, whole)
    # control: other Fourier frequencies give another embedding
    emb.fourier.freq.mul_(1.5)
    _assert_some_differs(outputs_and_grads(), whole)


def test_pna_layer_equals_reference() -> None:
    """The whole PNA layer against its plain form (FiLM chunked, PyG's aggregation)."""
    torch.manual_seed(0)
    src, dst = _graph(9)
    layer = PNALayer(6, 5, torch.tensor([4, 10, 6, 3])).double()
    pyg = _pyg_aggregation(torch.tensor([4, 10, 6, 3]))
    g = torch.Generator().manual_seed(10)
    h = torch.randn(N_NODES, 6, generator=g, dtype=torch.float64, requires_grad=True)
    e = torch.randn(N_EDGES, 5, generator=g, dtype=torch.float64, requires_grad=True)

    def reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        scale, shift = layer.film(b).chunk(2, dim=-1)
        msg = scale * (layer.pre_dst(a)[dst] + layer.pre_src(a)[src]) + shift
        agg = pyg(msg, index=dst, dim_size=N_NODES, dim=0)
        return layer.lin(layer.post(torch.cat([a, agg], dim=-1)))

    fast = _outputs_and_grads(lambda a, b: layer(a, b, src, dst), h, e)
    _assert_all_close(fast, _outputs_and_grads(reference, h, e))
    # control: edges reversed (the layer is directed) change the result
    _assert_some_differs(fast, _outputs_and_grads(lambda a, b: layer(a, b, dst, src), h, e))


def test_narrow_layer_norm_under_autocast_is_layer_norm() -> None:
    """Under autocast the module itself runs (autocast's own LayerNorm precision), bit for bit."""
    torch.manual_seed(0)
    ln = torch.nn.LayerNorm(4)
    x = torch.randn(30, 4).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = narrow_layer_norm(x, ln), ln(x)
        torch.nn.init.normal_(ln.bias)
        moved = narrow_layer_norm(x, ln)
    assert out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    # control: another bias gives another result
    assert not torch.allclose(moved, ref)


def test_widening_linear_equals_linear() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 16, bias=False).double()
    x = torch.randn(70, 4, dtype=torch.float64, requires_grad=True)
    fast = _outputs_and_grads(lambda a: widening_linear(a, lin), x, params=(lin.weight,))
    _assert_all_close(fast, _outputs_and_grads(lin, x, params=(lin.weight,)))
    # control: the transposed input's columns permuted (not the same map) differ
    _assert_some_differs(fast, _outputs_and_grads(lambda a: widening_linear(a.flip(1), lin), x, params=(lin.weight,)))
