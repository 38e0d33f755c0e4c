"""Networks as graphs: one node per neuron (or channel), one edge per weight (or kernel).

Conventions (docs/model.md §1):
- Nodes in layer order: all inputs, hidden layer 1, ..., outputs.
- Edges go forward, layer by layer, **source-major**: for each source j of layer l, for each
  target i of layer l+1. ``edge_index[0]`` is the source, ``edge_index[1]`` the target.
- Edge feature of j -> i is ``W[i, j]``; a conv kernel ``W[i, j]`` is flattened row-major and
  zero-padded (symmetrically, extra row/column at the bottom/right) to the largest kernel; a
  linear layer inside a CNN puts its weight in slot 0 of the ``kh * kw`` channels.
- Node feature is the neuron's bias; input neurons get a constant (1 for INRs, 0 for CNNs in
  the original code; chosen by the caller).
- Node types: each input neuron its own, each hidden layer one, each output neuron its own.
  Edge types: edges leaving input neuron j take j's type, each hidden->hidden layer one type,
  edges entering output neuron k take k's type (the intended rule, computed from the topology,
  not the original code's mis-ordered last layer).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from scalegmn.weightspace.network import Network, NetworkSpec


@dataclass(frozen=True)
class GraphTopology:
    """Everything about a graph that depends only on the architecture.

    Shapes:
        edge_index: ``(2, E)``; node_layer, node_type: ``(N,)``; edge_layer, edge_type: ``(E,)``.
        layer_offsets: ``(L + 2,)`` node index where each layer starts, plus N at the end.
        edge_offsets: ``(L + 1,)`` edge index where each weight layer starts, plus E.
    """

    spec: NetworkSpec
    edge_index: torch.Tensor
    node_layer: torch.Tensor
    node_type: torch.Tensor
    edge_layer: torch.Tensor
    edge_type: torch.Tensor
    layer_offsets: tuple[int, ...]
    edge_offsets: tuple[int, ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes N: one per neuron (channel), inputs included."""
        return self.spec.n_nodes

    @property
    def n_edges(self) -> int:
        """Number of edges E: one per weight (per kernel for conv layers)."""
        return self.spec.n_edges

    @property
    def n_node_types(self) -> int:
        """Number of distinct node types (the largest type id + 1)."""
        return int(self.node_type.max()) + 1

    @property
    def n_edge_types(self) -> int:
        """Number of distinct edge types (the largest type id + 1)."""
        return int(self.edge_type.max()) + 1

    @property
    def hidden_mask(self) -> torch.Tensor:
        """True on hidden neurons, the ones that carry a permutation/scaling symmetry."""
        n_layers = self.spec.n_layers
        return (self.node_layer > 0) & (self.node_layer < n_layers)


def edge_feature_dim(spec: NetworkSpec) -> int:
    """1 for MLPs; ``kh * kw`` for CNNs."""
    return 1 if spec.kernel_size is None else spec.kernel_size[0] * spec.kernel_size[1]


@functools.lru_cache(maxsize=64)
def topology(spec: NetworkSpec) -> GraphTopology:
    """The graph topology of an architecture (cached; treat the tensors as read-only)."""
    layout = spec.layout
    n_layers = spec.n_layers
    offsets = [0]
    for n in layout:
        offsets.append(offsets[-1] + n)

    node_layer = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(layout)])
    # Types: inputs 0..n0-1, then one per hidden layer, then one per output neuron.
    n_in, n_out = layout[0], layout[-1]
    hidden_types = [torch.full((layout[i],), n_in + i - 1) for i in range(1, n_layers)]
    node_type = torch.cat(
        [
            torch.arange(n_in),
            *hidden_types,
            torch.arange(n_out) + n_in + n_layers - 1,
        ]
    ).long()

    srcs, dsts, layers, etypes = [], [], [], []
    edge_offsets = [0]
    for layer in range(n_layers):
        n_src, n_dst = layout[layer], layout[layer + 1]
        src = torch.arange(n_src).repeat_interleave(n_dst)  # source-major
        dst = torch.arange(n_dst).repeat(n_src)
        if layer == 0:
            et = src.clone()  # type of the input neuron it leaves
        elif layer == n_layers - 1:
            et = n_in + (n_layers - 2) + dst  # type of the output neuron it enters
        else:
            et = torch.full_like(src, n_in + layer - 1)
        srcs.append(src + offsets[layer])
        dsts.append(dst + offsets[layer + 1])
        layers.append(torch.full_like(src, layer))
        etypes.append(et)
        edge_offsets.append(edge_offsets[-1] + n_src * n_dst)

    return GraphTopology(
        spec=spec,
        edge_index=torch.stack([torch.cat(srcs), torch.cat(dsts)]),
        node_layer=node_layer,
        node_type=node_type,
        edge_layer=torch.cat(layers),
        edge_type=torch.cat(etypes).long(),
        layer_offsets=tuple(offsets),
        edge_offsets=tuple(edge_offsets),
    )


def _pad_kernel(w: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Zero-pad ``(..., kh, kw)`` to ``kernel``, extra row/column at the bottom/right."""
    dh, dw = kernel[0] - w.shape[-2], kernel[1] - w.shape[-1]
    return torch.nn.functional.pad(w, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


def edge_block(spec: NetworkSpec, layer: int, weight: torch.Tensor) -> torch.Tensor:
    """The edge features of weight layer ``layer``: ``(*batch, in, out, d_e)``, source-major.

    Edge j -> i carries ``weight[..., i, j]``: a conv kernel flattened (zero-padded to the
    largest kernel), a linear weight in slot 0 of the ``d_e`` channels.
    """
    batch = weight.shape[: weight.dim() - (4 if spec.layer_kinds[layer] == "conv" else 2)]
    d_e = edge_feature_dim(spec)
    n_out, n_in = spec.layout[layer + 1], spec.layout[layer]
    if spec.layer_kinds[layer] == "conv":
        k = _pad_kernel(weight, spec.kernel_size).reshape(*batch, n_out, n_in, d_e)
    else:
        k = weight.unsqueeze(-1)
        if d_e > 1:  # linear layer inside a CNN: slot 0 (docs/model.md §1.3)
            k = torch.nn.functional.pad(k, (0, d_e - 1))
    return k.transpose(-3, -2)


def to_graph_features(
    net: Network, input_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Node and edge features of a network (batch).

    Returns:
        node_feat: ``(*batch, N)``; biases, and ``input_value`` on input nodes.
        edge_feat: ``(*batch, E, d_e)``; weights in the module's edge order.
    """
    spec, batch = net.spec, net.batch_shape
    d_e = edge_feature_dim(spec)
    nodes = [torch.full((*batch, spec.layout[0]), float(input_value), dtype=net.biases[0].dtype,
                        device=net.biases[0].device)]
    edges = []
    for layer, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        nodes.append(b)
        n_out, n_in = spec.layout[layer + 1], spec.layout[layer]
        edges.append(edge_block(spec, layer, w).reshape(*batch, n_in * n_out, d_e))
    return torch.cat(nodes, dim=-1), torch.cat(edges, dim=-2)


def from_graph_features(
    spec: NetworkSpec, node_feat: torch.Tensor, edge_feat: torch.Tensor
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Inverse of :func:`to_graph_features`: ``(weights, biases)`` in PyTorch order."""
    topo = topology(spec)
    batch = node_feat.shape[:-1]
    weights, biases = [], []
    for layer in range(spec.n_layers):
        n_out, n_in = spec.layout[layer + 1], spec.layout[layer]
        lo, hi = topo.layer_offsets[layer + 1], topo.layer_offsets[layer + 2]
        biases.append(node_feat[..., lo:hi])
        e = edge_feat[..., topo.edge_offsets[layer] : topo.edge_offsets[layer + 1], :]
        e = e.reshape(*batch, n_in, n_out, -1).transpose(-3, -2)  # (*batch, out, in, d_e)
        if spec.layer_kinds[layer] == "conv":
            kh, kw = spec.kernel_size
            weights.append(e[..., : kh * kw].reshape(*batch, n_out, n_in, kh, kw))
        else:
            weights.append(e[..., 0])
    return tuple(weights), tuple(biases)
