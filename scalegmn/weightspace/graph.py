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

from scalegmn.weightspace.network import SCALE_KINDS, Network, NetworkSpec
from scalegmn.weightspace.symmetry import channel_kinds


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


# Graphs of zoos that mix architectures ---------------------------------------------------
#
# A model that reads networks of many architectures (CNN Wild Park) cannot number node and
# edge types by one layout: output neurons would take a different type at every depth. Mixed
# graphs therefore number types by role first (issue 14):
#
# - nodes: input neuron i -> i; output neuron k -> n_in + k; hidden layer l (1-based) ->
#   n_in + n_out + l - 1;
# - edges: leaving input neuron i -> i; entering output neuron k -> n_in + k; hidden layer
#   l -> l + 1 -> n_in + n_out + l - 1; every residual edge one type, the last.
#
# Kernels are zero-padded symmetrically to the zoo's largest kernel (``ZooSpec.kernel_size``,
# e.g. 7x7: d_e = 49); the centres of odd kernels line up. A residual connection (j, i, m)
# becomes m edges from channel c of layer j's output to channel c of layer i's output
# (c < m), each carrying the identity kernel: 1 at the centre slot. Tied channels share their
# permutation and scale, so the constant feature transforms as an edge must (by q_i / q_j = 1).
# Each node has a scale kind (an index into SCALE_KINDS): its channel's group after residual
# ties (``symmetry.channel_kinds``); input and output neurons are "none".

KIND_NONE = SCALE_KINDS.index("none")


@dataclass(frozen=True)
class ZooSpec:
    """What a model for a zoo of mixed architectures is built for (the graph conventions above).

    Attributes:
        n_in: input neurons (channels) of every network.
        n_out: output neurons of every network.
        max_layers: the most weight layers a network may have (sizes the type tables).
        kernel_size: the largest conv kernel ``(kh, kw)``, every kernel is padded to it
            (``None`` for MLP zoos: d_e = 1).
    """

    n_in: int
    n_out: int
    max_layers: int
    kernel_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kernel_size is not None:
            object.__setattr__(self, "kernel_size", tuple(int(k) for k in self.kernel_size))
        if min(self.n_in, self.n_out, self.max_layers) < 1:
            raise ValueError(f"{self}: n_in, n_out and max_layers must be >= 1")

    @classmethod
    def covering(cls, specs) -> ZooSpec:
        """The smallest ZooSpec that fits every architecture in ``specs``."""
        specs = list(specs)
        if not specs:
            raise ValueError("ZooSpec.covering() needs at least one architecture")
        kernels = [s.kernel_size for s in specs if s.kernel_size is not None]
        kernel = (max(k[0] for k in kernels), max(k[1] for k in kernels)) if kernels else None
        ins, outs = {s.layout[0] for s in specs}, {s.layout[-1] for s in specs}
        if len(ins) > 1 or len(outs) > 1:
            raise ValueError(f"networks of one zoo must share their input and output sizes; these "
                             f"have inputs {sorted(ins)} and outputs {sorted(outs)}")
        return cls(ins.pop(), outs.pop(), max(s.n_layers for s in specs), kernel)

    def to_dict(self) -> dict:
        """JSON-serialisable, marked ``{"zoo": {...}}`` (a checkpoint's ``spec`` entry)."""
        return {"zoo": {"n_in": self.n_in, "n_out": self.n_out, "max_layers": self.max_layers,
                        "kernel_size": None if self.kernel_size is None else list(self.kernel_size)}}

    @property
    def d_e(self) -> int:
        """Edge feature width: ``kh * kw`` of the largest kernel, 1 for MLPs."""
        return 1 if self.kernel_size is None else self.kernel_size[0] * self.kernel_size[1]

    @property
    def n_node_types(self) -> int:
        """Node types: one per input, one per output, one per hidden layer depth."""
        return self.n_in + self.n_out + self.max_layers - 1

    @property
    def n_edge_types(self) -> int:
        """Edge types: one per input, one per output, one per hidden->hidden depth, residual."""
        return self.n_in + self.n_out + max(self.max_layers - 2, 0) + 1

    def check(self, spec: NetworkSpec, where: str = "network") -> None:
        """``ValueError`` naming what does not fit when ``spec`` is outside this zoo."""
        problem = None
        if (spec.layout[0], spec.layout[-1]) != (self.n_in, self.n_out):
            problem = (f"{spec.layout[0]} inputs and {spec.layout[-1]} outputs, the model reads "
                       f"{self.n_in} and {self.n_out}")
        elif spec.n_layers > self.max_layers:
            problem = f"{spec.n_layers} layers, the model reads at most {self.max_layers}"
        elif spec.kernel_size is not None and (
                self.kernel_size is None or spec.kernel_size[0] > self.kernel_size[0]
                or spec.kernel_size[1] > self.kernel_size[1]):
            problem = f"kernel {spec.kernel_size}, larger than the model's {self.kernel_size}"
        if problem:
            raise ValueError(f"{where}: architecture with {problem}; build the model with "
                             "ZooSpec.covering() of every architecture it must read")


def spec_from_dict(d: dict) -> NetworkSpec | ZooSpec:
    """The NetworkSpec or ZooSpec that ``to_dict`` wrote."""
    return ZooSpec(**d["zoo"]) if "zoo" in d else NetworkSpec.from_dict(d)


@dataclass(frozen=True)
class MixedTopology:
    """The graph of one architecture under a :class:`ZooSpec`'s conventions.

    Shapes: ``edge_index (2, E)`` (regular edges in :func:`topology`'s order, then residual
    edges), ``node_type``, ``node_layer``, ``node_kind (N,)``, ``edge_type (E,)``;
    ``n_regular``: the number of regular edges; ``residual_slot``: the identity kernel's slot.
    """

    spec: NetworkSpec
    zoo: ZooSpec
    edge_index: torch.Tensor
    node_layer: torch.Tensor
    node_type: torch.Tensor
    node_kind: torch.Tensor
    edge_type: torch.Tensor
    n_regular: int
    residual_slot: int


@functools.lru_cache(maxsize=256)
def mixed_topology(spec: NetworkSpec, zoo: ZooSpec) -> MixedTopology:
    """The mixed-zoo graph of ``spec`` (cached; treat the tensors as read-only)."""
    zoo.check(spec)
    base = topology(spec)
    n_in, n_out, n_layers = zoo.n_in, zoo.n_out, spec.n_layers
    layer = base.node_layer
    hidden_type = n_in + n_out + layer - 1
    out_type = torch.arange(spec.n_nodes) - base.layer_offsets[n_layers] + n_in  # outputs
    node_type = torch.where(layer == 0, torch.arange(spec.n_nodes),
                            torch.where(layer == n_layers, out_type, hidden_type))
    kinds = [KIND_NONE] * spec.layout[0]
    for per_layer in channel_kinds(spec):
        kinds += [SCALE_KINDS.index(k) if k in SCALE_KINDS else KIND_NONE for k in per_layer]
    kinds += [KIND_NONE] * spec.layout[-1]

    src, dst = base.edge_index
    e_layer = base.edge_layer
    edge_type = torch.where(
        e_layer == 0, src,
        torch.where(e_layer == n_layers - 1, dst - base.layer_offsets[n_layers] + n_in,
                    n_in + n_out + e_layer - 1))
    res_src, res_dst = [], []
    for j, i, m in spec.residual_pairs():
        res_src.append(torch.arange(m) + base.layer_offsets[j + 1])
        res_dst.append(torch.arange(m) + base.layer_offsets[i + 1])
    if res_src:
        src = torch.cat([src, *res_src])
        dst = torch.cat([dst, *res_dst])
        n_res = int(sum(t.numel() for t in res_src))
        edge_type = torch.cat([edge_type, torch.full((n_res,), zoo.n_edge_types - 1)])
    slot = 0
    if zoo.kernel_size is not None:
        kh, kw = zoo.kernel_size
        slot = (kh // 2) * kw + kw // 2
    return MixedTopology(spec, zoo, torch.stack([src, dst]), layer, node_type.long(),
                         torch.tensor(kinds, dtype=torch.long), edge_type.long(),
                         base.n_edges, slot)


def mixed_edge_block(spec: NetworkSpec, zoo: ZooSpec, layer: int, weight: torch.Tensor) -> torch.Tensor:
    """:func:`edge_block` padded to the zoo's kernel: ``(*batch, in, out, zoo.d_e)``."""
    batch = weight.shape[: weight.dim() - (4 if spec.layer_kinds[layer] == "conv" else 2)]
    n_out, n_in = spec.layout[layer + 1], spec.layout[layer]
    if spec.layer_kinds[layer] == "conv":
        k = _pad_kernel(weight, zoo.kernel_size).reshape(*batch, n_out, n_in, zoo.d_e)
    else:
        k = torch.nn.functional.pad(weight.unsqueeze(-1), (0, zoo.d_e - 1))
    return k.transpose(-3, -2)


def mixed_graph_features(net: Network, zoo: ZooSpec, input_value: float = 0.0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Node ``(*batch, N)`` and edge ``(*batch, E, zoo.d_e)`` features of a network (batch) in
    :func:`mixed_topology`'s order: biases (``input_value`` on inputs); weights, then the
    residual edges' identity kernels."""
    spec, batch = net.spec, net.batch_shape
    topo = mixed_topology(spec, zoo)
    dtype, device = net.biases[0].dtype, net.biases[0].device
    nodes = [torch.full((*batch, spec.layout[0]), float(input_value), dtype=dtype, device=device),
             *net.biases]
    edges = [mixed_edge_block(spec, zoo, k, w).reshape(*batch, -1, zoo.d_e)
             for k, w in enumerate(net.weights)]
    n_res = topo.edge_index.shape[1] - topo.n_regular
    if n_res:
        res = torch.zeros(*batch, n_res, zoo.d_e, dtype=dtype, device=device)
        res[..., topo.residual_slot] = 1.0
        edges.append(res)
    return torch.cat(nodes, dim=-1), torch.cat(edges, dim=-2)
