"""The Python data API: a cached split as PyG graphs, or one network's layer tensors.

``scalegmn.data.load_split(path)`` opens a store (``results/cache/<view>/<split>.zarr``) as a
:class:`~scalegmn.data.cache.CachedSplit`, a ``torch.utils.data.Dataset``;
:func:`to_pyg` gives its networks as ``torch_geometric.data.Data`` graphs (docs/model.md §1) and
:func:`weights` one network's per-layer weights and biases in PyTorch layout.
"""

from __future__ import annotations

from typing import Any

import torch

from scalegmn.data.split_protocol import Split
from scalegmn.weightspace.graph import to_graph_features, topology
from scalegmn.weightspace.network import NetworkSpec


def default_input_value(spec: NetworkSpec) -> float:
    """The input nodes' feature the original code uses: 0 for CNNs, 1 for INRs (docs/model.md §1.1)."""
    return 0.0 if spec.is_cnn else 1.0


def _groups(split: Split) -> list[tuple[Any, torch.Tensor]]:
    """(one-architecture split, its rows in ``split``) pairs."""
    groups = getattr(split, "groups", None)
    if groups is None or len(getattr(split, "specs", [None])) == 1:
        return [(split, torch.arange(split.size))]
    arch_id = split.arch_id.cpu()
    return [(g, torch.nonzero(arch_id == a).flatten()) for a, g in enumerate(groups())]


def weights(split: Split, i: int) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Network ``i`` of ``split`` as ``(weights, biases)``: per layer, ``(out, in[, kh, kw])`` and ``(out,)``."""
    if not -split.size <= i < split.size:
        raise IndexError(f"network {i} out of range for a split of {split.size}")
    for group, rows in _groups(split):
        hit = torch.nonzero(rows == i % split.size).flatten()
        if len(hit):
            net = group.get([int(hit[0])]).net
            return tuple(w[0] for w in net.weights), tuple(b[0] for b in net.biases)
    raise IndexError(f"network {i} not found")  # unreachable: the groups cover every row


def to_pyg(split: Split, input_value: float | None = None, batch_size: int = 1024) -> list:
    """Every network of ``split`` as a ``torch_geometric.data.Data`` graph, in row order.

    Each graph has ``x`` ``(N, 1)`` (biases; ``input_value`` on input nodes, default
    :func:`default_input_value`), ``edge_index`` ``(2, E)`` (source-major, forward),
    ``edge_attr`` ``(E, d_e)``, ``node_type`` / ``edge_type`` (positional types), ``y`` and
    ``layer_layout``. Needs ``torch_geometric``.
    """
    from torch_geometric.data import Data  # optional dependency, only for this function

    out: list = [None] * split.size
    for group, rows in _groups(split):
        spec = group.spec
        topo = topology(spec)
        value = default_input_value(spec) if input_value is None else input_value
        for lo in range(0, group.size, batch_size):
            batch = group.get(list(range(lo, min(lo + batch_size, group.size))))
            nodes, edges = to_graph_features(batch.net.to(device="cpu"), value)
            for k in range(batch.size):
                y = None if batch.y is None else batch.y[k].cpu().reshape(1)
                out[int(rows[lo + k])] = Data(
                    x=nodes[k].unsqueeze(-1), edge_index=topo.edge_index, edge_attr=edges[k],
                    node_type=topo.node_type, edge_type=topo.edge_type, y=y, layer_layout=list(spec.layout),
                )
    return out
