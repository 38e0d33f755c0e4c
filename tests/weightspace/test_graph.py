"""Graph construction: topology, types and the weights <-> features round trip."""

import torch

from scalegmn.weightspace.graph import (
    edge_feature_dim,
    from_graph_features,
    to_graph_features,
    topology,
)
from scalegmn.weightspace.network import NetworkSpec, cnn_zoo_spec, dws_siren_spec, nfn_siren_spec
from scalegmn.weightspace.testing import random_network


def test_counts_match_the_original_graphs():
    # docs/model.md §1.2-§1.3: nodes, edges, node and edge type counts.
    for spec, nodes, edges, ntypes, etypes in [
        (dws_siren_spec(), 67, 1120, 5, 4),
        (nfn_siren_spec(), 69, 1184, 7, 6),
        (cnn_zoo_spec("relu"), 59, 688, 14, 13),
    ]:
        topo = topology(spec)
        assert (topo.n_nodes, topo.n_edges) == (nodes, edges)
        assert (topo.n_node_types, topo.n_edge_types) == (ntypes, etypes)
        assert topo.edge_index.shape == (2, edges)
    assert edge_feature_dim(cnn_zoo_spec("relu")) == 9


def test_edges_are_source_major_and_forward():
    topo = topology(NetworkSpec((2, 3, 1), ("sine", "identity")))
    src, dst = topo.edge_index
    assert src[:3].tolist() == [0, 0, 0] and dst[:3].tolist() == [2, 3, 4]
    assert (topo.node_layer[src] + 1 == topo.node_layer[dst]).all()


def test_last_layer_edge_type_follows_the_output_neuron():
    # The original mixes sources and targets here when there are several outputs (docs/model.md §1.4).
    spec = nfn_siren_spec()
    topo = topology(spec)
    last = topo.edge_layer == spec.n_layers - 1
    dst = topo.edge_index[1, last]
    types = topo.edge_type[last]
    for k in dst.unique():
        assert types[dst == k].unique().numel() == 1
    assert types.unique().numel() == spec.layout[-1]


def test_edge_feature_is_the_weight_from_source_to_target():
    spec = dws_siren_spec()
    net = random_network(spec, ())
    node_feat, edge_feat = to_graph_features(net, input_value=1.0)
    topo = topology(spec)
    off = topo.layer_offsets
    for e in torch.randperm(spec.n_edges)[:50]:
        j, i = topo.edge_index[:, e].tolist()
        layer = int(topo.edge_layer[e])
        assert edge_feat[e, 0] == net.weights[layer][i - off[layer + 1], j - off[layer]]
    assert node_feat[:2].tolist() == [1.0, 1.0]
    assert torch.equal(node_feat[off[1] : off[2]], net.biases[0])


def test_round_trip_for_every_architecture_with_batches():
    for spec in (dws_siren_spec(), nfn_siren_spec(), cnn_zoo_spec("tanh")):
        net = random_network(spec, (2, 3))
        node_feat, edge_feat = to_graph_features(net)
        weights, biases = from_graph_features(spec, node_feat, edge_feat)
        assert all(torch.equal(a, b) for a, b in zip(weights, net.weights, strict=True))
        assert all(torch.equal(a, b) for a, b in zip(biases, net.biases, strict=True))


def test_cnn_dense_weights_sit_in_slot_zero():
    spec = cnn_zoo_spec("relu")
    net = random_network(spec, ())
    _, edge_feat = to_graph_features(net)
    dense = edge_feat[topology(spec).edge_layer == 3]
    assert (dense[:, 1:] == 0).all() and (dense[:, 0] != 0).all()
