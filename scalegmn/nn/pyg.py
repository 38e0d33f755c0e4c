"""PyG batching of network graphs of any layouts and activations (the general path).

One :class:`torch_geometric.data.Data` per network; ``Batch.from_data_list`` offsets the edge
indices. Fields: ``x (N,)`` node values (biases; input neurons 0, the model substitutes its
``input_node_value``), ``edge_attr (E, d_e)``, ``edge_index (2, E)`` (forward, source-major),
``node_type``, ``edge_type``, ``node_role`` (0 input, 1 hidden, 2 output), ``odd (1,)`` (True
where the sign group acts: sine/tanh hidden activation), ``spec_key`` (the architecture, JSON)
and optionally ``y``.

A batch that mixes layouts works with the ``full_graph`` readout (``last_layer`` needs one
number of output neurons; the editing head needs one architecture).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch
from torch_geometric.data import Batch, Data

from scalegmn.nn.graph_batch import INPUT, OUTPUT, FlatGraph, node_roles
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.graph import to_graph_features, topology
from scalegmn.weightspace.network import Network, NetworkSpec, unstack


def network_to_data(net: Network, *, odd: bool | None = None, y: torch.Tensor | None = None) -> Data:
    """The graph of one (unbatched) network. ``odd`` defaults to its hidden activation."""
    if len(net.batch_shape) != 0:
        raise ValueError(f"{net.source or 'network'}: network_to_data() takes one network, "
                         f"got batch shape {tuple(net.batch_shape)}")
    spec = net.spec
    topo = topology(spec)
    node_feat, edge_feat = to_graph_features(net, 0.0)
    if odd is None:
        odd = spec.hidden_activation in ("sine", "tanh")
    data = Data(
        x=node_feat,
        edge_attr=edge_feat,
        edge_index=topo.edge_index.clone(),
        node_type=topo.node_type.clone(),
        edge_type=topo.edge_type.clone(),
        node_role=node_roles(spec),
        odd=torch.tensor([bool(odd)]),
        spec_key=spec.key(),
        num_nodes=spec.n_nodes,
    )
    if y is not None:
        data.y = y.reshape(1) if y.dim() == 0 else y
    return data


def collate(
    networks: Sequence[Network],
    *,
    odd: Sequence[bool] | None = None,
    y: torch.Tensor | None = None,
) -> Batch:
    """A PyG batch of networks of any layouts."""
    odd = odd if odd is not None else [None] * len(networks)
    ys = [None] * len(networks) if y is None else list(y)
    return Batch.from_data_list(
        [network_to_data(n, odd=o, y=t) for n, o, t in zip(networks, odd, ys, strict=True)]
    )


def from_weight_batch(batch: WeightBatch) -> Batch:
    """The PyG batch of a :class:`WeightBatch` (for tests and mixed pipelines)."""
    odd = [bool(v) for v in batch.odd_mask()]
    return collate(unstack(batch.net), odd=odd, y=batch.y)


def _per_graph(role: torch.Tensor, node_graph: torch.Tensor, wanted: int, n_graphs: int):
    idx = torch.nonzero(role == wanted).squeeze(-1)
    counts = torch.bincount(node_graph[idx], minlength=n_graphs)
    if n_graphs == 0 or not bool((counts == counts[0]).all()):
        return None
    return idx.reshape(n_graphs, -1)


def flat_graph_from_pyg(batch: Batch, input_value: float = 0.0) -> FlatGraph:
    """The model's :class:`FlatGraph` of a PyG batch; input neurons get ``input_value``."""
    n_graphs = int(batch.num_graphs)
    role = batch.node_role
    node_graph = batch.batch
    x = torch.where(role == INPUT, torch.as_tensor(input_value, dtype=batch.x.dtype), batch.x)
    keys = batch.spec_key if isinstance(batch.spec_key, list) else [batch.spec_key]
    spec = NetworkSpec.from_dict(json.loads(keys[0])) if len(set(keys)) == 1 else None
    src, dst = batch.edge_index
    return FlatGraph(
        node_value=x,
        edge_value=batch.edge_attr,
        src=src,
        dst=dst,
        node_role=role,
        node_type=batch.node_type,
        edge_type=batch.edge_type,
        node_graph=node_graph,
        edge_graph=node_graph[src],
        odd=batch.odd.bool(),
        in_nodes=_per_graph(role, node_graph, INPUT, n_graphs),
        out_nodes=_per_graph(role, node_graph, OUTPUT, n_graphs),
        spec=spec,
    )
