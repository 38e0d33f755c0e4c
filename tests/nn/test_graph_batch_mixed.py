"""The general (index-based) FlatGraph of a MixedBatch: per-graph content is each network's
mixed graph, its graph operations equal the block fast path's on a one-architecture batch, and
its role groups are the rows of each role."""

from __future__ import annotations

import torch

from scalegmn.nn.graph_batch import HIDDEN, INPUT, OUTPUT, from_mixed_batch, from_weight_batch
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.graph import ZooSpec, mixed_graph_features, mixed_topology
from scalegmn.weightspace.network import NetworkSpec, cnn_zoo_spec
from scalegmn.weightspace.testing import random_network

RES = NetworkSpec((3, 4, 6, 5, 10), ("relu", "gelu", "tanh", "identity"),
                  layer_kinds=("conv",) * 3 + ("linear",), kernel_size=(3, 3), conv_padding=1,
                  residual=(-1, -1, 0, -1))
SHALLOW = NetworkSpec((3, 7, 10), ("sigmoid", "identity"), layer_kinds=("conv", "linear"),
                      kernel_size=(5, 5), conv_padding=2)
ONE_LAYER = NetworkSpec((3, 10), ("identity",), layer_kinds=("linear",))  # input->output edges
ZOO = ZooSpec.covering([RES, SHALLOW, ONE_LAYER])


def per_graph(rows_graph: torch.Tensor, x: torch.Tensor, g: int) -> torch.Tensor:
    """The rows of graph ``g`` in row order."""
    return x[rows_graph == g]


def test_each_graph_holds_its_networks_mixed_graph():
    nets = [random_network(RES, (2,), seed=0), random_network(SHALLOW, (3,), seed=1),
            random_network(ONE_LAYER, (1,), seed=2)]
    fg = from_mixed_batch(MixedBatch(tuple(nets)), 0.5, ZOO)
    assert fg.general and fg.num_graphs == 6 and fg.edge_value.shape[1] == ZOO.d_e
    k = 0
    for net in nets:
        topo = mixed_topology(net.spec, ZOO)
        nodes, edges = mixed_graph_features(net, ZOO, 0.5)
        for b in range(net.batch_shape[0]):
            # Rows of a graph are in its own node order (role-first = layer order).
            torch.testing.assert_close(per_graph(fg.node_graph, fg.node_value, k), nodes[b])
            assert torch.equal(per_graph(fg.node_graph, fg.node_kind, k), topo.node_kind)
            assert torch.equal(per_graph(fg.node_graph, fg.node_type, k), topo.node_type)
            # Edges as a set of (source, target, type, value): local node ids via the ranks.
            rows = torch.nonzero(fg.node_graph == k).squeeze(-1)
            local = torch.full((fg.num_nodes,), -1, dtype=torch.long)
            local[rows] = torch.arange(rows.numel())
            mine = fg.edge_graph == k
            got = sorted(zip(local[fg.src[mine]].tolist(), local[fg.dst[mine]].tolist(),
                             fg.edge_type[mine].tolist(), fg.edge_value[mine].sum(-1).tolist(),
                             strict=True))
            want = sorted(zip(*topo.edge_index.tolist(), topo.edge_type.tolist(),
                              edges[b].sum(-1).tolist(), strict=True))
            assert got == want
            assert torch.equal(fg.in_nodes[k], rows[:3]) and torch.equal(fg.out_nodes[k], rows[-10:])
            k += 1
    # Role groups are exactly the rows of each role (the backward groups by source role).
    role = fg.node_role
    for which, rows_role in (("nodes", role), ("fwd", role[fg.dst]), ("bwd", role[fg.src])):
        parts = fg.groups(which).split(torch.arange(rows_role.numel()))
        for r, part in zip((INPUT, HIDDEN, OUTPUT), parts, strict=True):
            assert torch.equal(part.sort().values, torch.nonzero(rows_role == r).squeeze(-1)), which


def _canonical(rows_graph: torch.Tensor) -> torch.Tensor:
    """Row order grouped by graph, each graph's rows in row order (= its local order)."""
    return torch.argsort(rows_graph * rows_graph.numel() + torch.arange(rows_graph.numel()))


def test_general_operations_equal_the_block_fast_path():
    spec = cnn_zoo_spec("relu")
    net = random_network(spec, (4,), seed=3)
    fast = from_weight_batch(WeightBatch(net), 0.0)
    gen = from_mixed_batch(MixedBatch((net,)), 0.0, ZooSpec.covering([spec]))
    nf, ng = _canonical(fast.node_graph), _canonical(gen.node_graph)
    ef, eg = _canonical(fast.edge_graph), _canonical(gen.edge_graph)
    torch.testing.assert_close(gen.node_value[ng], fast.node_value[nf])
    torch.testing.assert_close(gen.edge_value[eg], fast.edge_value[ef])
    g = torch.Generator().manual_seed(0)
    x_fast = torch.randn(fast.num_nodes, 5, generator=g, dtype=torch.float64)
    y_fast = torch.randn(fast.num_nodes, 5, generator=g, dtype=torch.float64)
    m_fast = torch.randn(fast.edge_value.shape[0], 5, generator=g, dtype=torch.float64)
    # The same values in the general graph's row order.
    x_gen, y_gen, m_gen = (torch.empty_like(t) for t in (x_fast, y_fast, m_fast))
    x_gen[ng], y_gen[ng], m_gen[eg] = x_fast[nf], y_fast[nf], m_fast[ef]
    for name, f_out, g_out, order in (
        ("gather_src", fast.gather_src(x_fast), gen.gather_src(x_gen), (ef, eg)),
        ("gather_dst", fast.gather_dst(x_fast), gen.gather_dst(x_gen), (ef, eg)),
        ("with_src", fast.with_src(m_fast, x_fast), gen.with_src(m_gen, x_gen), (ef, eg)),
        ("with_dst", fast.with_dst(m_fast, x_fast), gen.with_dst(m_gen, x_gen), (ef, eg)),
        ("src_plus_dst", fast.src_plus_dst(x_fast, y_fast), gen.src_plus_dst(x_gen, y_gen), (ef, eg)),
        ("sum_at_dst", fast.sum_at_dst(m_fast), gen.sum_at_dst(m_gen), (nf, ng)),
        ("sum_at_src", fast.sum_at_src(m_fast), gen.sum_at_src(m_gen), (nf, ng)),
    ):
        torch.testing.assert_close(g_out[order[1]], f_out[order[0]], msg=name)
    # Control: the canonical map is not the identity (the two row orders differ).
    assert not torch.equal(gen.node_value, fast.node_value)
