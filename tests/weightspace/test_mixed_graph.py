"""Graphs of mixed architectures: residual edges, per-node kinds, padded kernels; the graph of a
transformed network is the permuted and scaled graph (float64), and an untied permutation's
is not (control)."""

from __future__ import annotations

import pytest
import torch

from scalegmn.weightspace.graph import ZooSpec, mixed_graph_features, mixed_topology
from scalegmn.weightspace.network import SCALE_KINDS, NetworkSpec
from scalegmn.weightspace.symmetry import apply_group_element, random_group_element
from scalegmn.weightspace.testing import random_network

B = 2
CNN = NetworkSpec((3, 4, 6, 5, 8, 10), ("relu", "gelu", "tanh", "leaky_relu", "identity"),
                  layer_kinds=("conv",) * 4 + ("linear",), kernel_size=(3, 3), conv_padding=1,
                  residual=(-1, -1, 0, 1, -1))
CHAIN = NetworkSpec((3, 8, 4, 6, 5, 8, 10), ("tanh", "relu", "tanh", "gelu", "tanh", "identity"),
                    layer_kinds=("conv",) * 5 + ("linear",), kernel_size=(5, 5), conv_padding=2,
                    residual=(-1, -1, 0, 1, 2, -1))
SHALLOW = NetworkSpec((3, 7, 10), ("sigmoid", "identity"), layer_kinds=("conv", "linear"),
                      kernel_size=(7, 7), conv_padding=3)
ZOO = ZooSpec.covering([CNN, CHAIN, SHALLOW])


def test_zoo_spec_covers_and_refuses_clearly():
    assert ZOO == ZooSpec(3, 10, 6, (7, 7)) and ZOO.d_e == 49
    assert ZOO.n_node_types == 3 + 10 + 5 and ZOO.n_edge_types == 3 + 10 + 4 + 1
    with pytest.raises(ValueError, match="5 layers, the model reads at most 2"):
        ZooSpec(3, 10, 2, (7, 7)).check(CNN)
    with pytest.raises(ValueError, match="share their input and output sizes"):
        ZooSpec.covering([CNN, NetworkSpec((2, 4, 1), ("relu", "identity"))])


def test_residual_edges_types_and_kinds():
    topo = mixed_topology(CNN, ZOO)
    res = topo.edge_type == ZOO.n_edge_types - 1
    assert int(res.sum()) == 4 + 6 and topo.edge_index.shape[1] == CNN.n_edges + 10
    src, dst = topo.edge_index[:, res]
    assert torch.equal(src[:4], torch.arange(4) + 3) and torch.equal(dst[:4], torch.arange(4) + 3 + 4 + 6)
    _, feats = mixed_graph_features(random_network(CNN, (B,)), ZOO)
    assert torch.equal(feats[:, res], torch.zeros(B, 10, 49).index_fill(-1, torch.tensor(24), 1.0))
    kind = [SCALE_KINDS[k] for k in topo.node_kind.tolist()]
    # layer 1 relu tied to tanh: none; layer 2 gelu: none; layer 3 tanh: [:4] none, [4] sign;
    # layer 4 leaky relu tied to gelu on [:6]: none, [6:] positive.
    assert kind[3:7] == ["none"] * 4 and kind[13:17] == ["none"] * 4 and kind[17] == "sign"
    assert kind[18:24] == ["none"] * 6 and kind[24:26] == ["positive"] * 2
    # Output neurons get their own types, the same at any depth.
    out_types = {int(mixed_topology(s, ZOO).node_type[-1]) for s in (CNN, CHAIN, SHALLOW)}
    assert out_types == {3 + 9}


def test_kernels_are_padded_to_the_zoo_kernel_centred():
    net = random_network(SHALLOW, (1,))
    zoo = ZooSpec(3, 10, 3, (9, 9))
    _, feats = mixed_graph_features(net, zoo)
    k = feats[0, 0].reshape(9, 9)  # edge input 0 -> channel 0
    torch.testing.assert_close(k[1:8, 1:8], net.weights[0][0, 0, 0])
    border = k.clone()
    border[1:8, 1:8] = 0
    assert not bool(border.any())


def _graph_map(spec, perms, scales):
    """New node -> old node, and the per-old-node scale (1 on inputs/outputs), per network."""
    offsets = [0]
    for n in spec.layout:
        offsets.append(offsets[-1] + n)
    maps, qs = [], []
    for b in range(B):
        m = list(range(spec.layout[0]))
        q = [1.0] * spec.layout[0]
        for layer in range(1, spec.n_layers):
            p = perms[layer - 1][b].tolist()
            m += [offsets[layer] + i for i in p]
            q += scales[layer - 1][b].tolist()
        m += list(range(offsets[-2], offsets[-1]))
        q += [1.0] * spec.layout[-1]
        maps.append(torch.tensor(m))
        qs.append(torch.tensor(q, dtype=torch.float64))
    return maps, qs


def _is_transformed_graph(spec, net, moved, perms, scales) -> float:
    """Largest mismatch between the moved network's graph and the mapped original graph
    (inf when an edge maps to no edge of the same type)."""
    topo = mixed_topology(spec, ZOO)
    nodes, edges = mixed_graph_features(net, ZOO)
    nodes2, edges2 = mixed_graph_features(moved, ZOO)
    index = {(int(s), int(d), int(t)): k for k, (s, d, t) in
             enumerate(zip(*topo.edge_index, topo.edge_type, strict=True))}
    worst = 0.0
    for b, (m, q) in enumerate(zip(*_graph_map(spec, perms, scales), strict=True)):
        worst = max(worst, float((nodes2[b] - q[m] * nodes[b][m]).abs().max()))
        for k, (s, d, t) in enumerate(zip(*topo.edge_index, topo.edge_type, strict=True)):
            old = index.get((int(m[s]), int(m[d]), int(t)))
            if old is None:
                return float("inf")
            want = edges[b, old] * q[m[d]] / q[m[s]]
            worst = max(worst, float((edges2[b, k] - want).abs().max()))
    return worst


@pytest.mark.parametrize("spec", [CNN, CHAIN, SHALLOW], ids=["cnn", "chain", "shallow"])
def test_graph_of_a_transformed_network_is_the_transformed_graph(spec):
    net = random_network(spec, (B,), seed=2)
    perms, scales = random_group_element(spec, torch.Generator().manual_seed(3), (B,))
    moved = apply_group_element(net, perms, scales)
    assert _is_transformed_graph(spec, net, moved, perms, scales) < 1e-12


def test_untied_permutation_breaks_the_residual_edges():
    """CONTROL: the weights move consistently, but residual edges no longer map onto edges."""
    perms, scales = random_group_element(CNN, torch.Generator().manual_seed(4), (B,))
    bad = list(perms)
    bad[2] = torch.roll(perms[2], 1, dims=-1)
    net = random_network(CNN, (B,), seed=5)
    moved = apply_group_element(net, bad, scales)
    assert _is_transformed_graph(CNN, net, moved, bad, scales) == float("inf")
