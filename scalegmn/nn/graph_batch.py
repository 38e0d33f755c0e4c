"""The flat graph a ScaleGMN model runs on: all nodes and edges of a batch, concatenated.

A :class:`~scalegmn.weightspace.batch.WeightBatch` of B networks of one layout becomes one
:class:`FlatGraph` (:func:`from_weight_batch`). The model code is written once, against the
graph operations of this class: gather a node tensor to the edges' sources or targets, combine
an edge tensor with its sources' or targets' rows, and sum an edge tensor at the targets or
sources.

Row order (layer-major): all graphs' input neurons, then all graphs' first hidden layer, ...;
edges likewise, per weight layer, graph-major then source-major. Edge block l of B graphs is
then a ``(B, n_l, n_{l+1}, d)`` view, so gathers are broadcasts and sums are reductions (no
scatter, cheap backward), and the rows of each node role (input, hidden, output) are
contiguous, so blocks select them by slicing instead of copying.

(A second, general row order for PyG batches of mixed architectures existed until issue 10; it
was removed with :mod:`scalegmn.nn.pyg`. ``src``/``dst`` still index every edge, so an
index-based path can come back as a ``MessagePassing`` implementation.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.graph import edge_block, edge_feature_dim, topology
from scalegmn.weightspace.network import NetworkSpec

INPUT, HIDDEN, OUTPUT = 0, 1, 2


def node_roles(spec: NetworkSpec) -> torch.Tensor:
    """``(N,)``: 0 for input neurons, 1 for hidden, 2 for outputs."""
    layer = topology(spec).node_layer
    role = torch.full_like(layer, HIDDEN)
    role[layer == 0] = INPUT
    role[layer == spec.n_layers] = OUTPUT
    return role


@dataclass
class RowGroups:
    """Rows of a node or edge tensor split by the role that picks their branch of a block.

    Either ``ranges`` (contiguous ``(start, stop)`` per role, in role order, covering all rows)
    or ``index`` per role plus ``inverse``, which undoes ``cat(parts)`` back to row order.
    """

    index: tuple[torch.Tensor, ...] | None = None
    inverse: torch.Tensor | None = None
    ranges: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def from_roles(cls, role: torch.Tensor) -> RowGroups:
        """Index groups from ``role`` ``(R,)`` (0 input, 1 hidden, 2 output), rows in any order."""
        index = tuple(torch.nonzero(role == r).squeeze(-1) for r in (INPUT, HIDDEN, OUTPUT))
        order = torch.cat(index)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return cls(index=index, inverse=inverse)

    def size(self, role: int) -> int:
        """Number of rows of ``role``."""
        if self.ranges is not None:
            return self.ranges[role][1] - self.ranges[role][0]
        return int(self.index[role].numel())

    def split(self, x: torch.Tensor | None) -> list[torch.Tensor | None]:
        """The rows of each role, in role order (views when the rows are contiguous)."""
        if x is None:
            return [None, None, None]
        if self.ranges is not None:
            return list(torch.split(x, [stop - start for start, stop in self.ranges]))
        return [x.index_select(0, idx) for idx in self.index]

    def take(self, x: torch.Tensor | None, role: int) -> torch.Tensor | None:
        """The rows of one role (a view when the rows are contiguous)."""
        if x is None:
            return None
        if self.ranges is not None:
            start, stop = self.ranges[role]
            return x[start:stop]
        return x.index_select(0, self.index[role])

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Per-role results (in role order) back into one tensor in row order."""
        nonempty = [p for p in parts if p.shape[0] > 0]
        if self.ranges is not None:
            return nonempty[0] if len(nonempty) == 1 else torch.cat(nonempty, dim=0)
        return torch.cat(parts, dim=0).index_select(0, self.inverse)


@dataclass
class FlatGraph:
    """A batch of graphs, concatenated.

    Shapes: ``node_value (N,)``, ``edge_value (E, d_e)``, ``src``/``dst`` ``(E,)`` (forward edge
    j -> i, j in the earlier layer), ``node_role``/``node_type``/``node_graph`` ``(N,)``,
    ``edge_type``/``edge_graph`` ``(E,)``, ``odd (G,)`` bool (sign group where True),
    ``in_nodes (G, n_in)`` and ``out_nodes (G, n_out)`` node rows, ``spec``: the architecture
    every graph shares. Rows are in the layer-major order of the module docstring.
    """

    node_value: torch.Tensor
    edge_value: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    node_role: torch.Tensor
    node_type: torch.Tensor
    edge_type: torch.Tensor
    node_graph: torch.Tensor
    edge_graph: torch.Tensor
    odd: torch.Tensor
    in_nodes: torch.Tensor
    out_nodes: torch.Tensor
    spec: NetworkSpec
    _groups: dict = field(default_factory=dict, repr=False)

    @property
    def num_graphs(self) -> int:
        """Number of graphs G."""
        return int(self.odd.shape[0])

    @property
    def num_nodes(self) -> int:
        """Number of nodes N over all graphs."""
        return int(self.node_value.shape[0])

    def node_odd(self) -> torch.Tensor:
        """``(N,)`` bool: whether each node's graph has an odd activation (sign group)."""
        return self.odd[self.node_graph]

    def edge_odd(self) -> torch.Tensor:
        """``(E,)`` bool: whether each edge's graph has an odd activation (sign group)."""
        return self.odd[self.edge_graph]

    # Layer-major blocks ------------------------------------------------------------------
    def _node_block(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        layout, g = self.spec.layout, self.num_graphs
        start = sum(layout[:layer]) * g
        return x[start : start + layout[layer] * g].reshape(g, layout[layer], *x.shape[1:])

    def _edge_blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        layout, g = self.spec.layout, self.num_graphs
        sizes = [a * b * g for a, b in zip(layout[:-1], layout[1:], strict=True)]
        return [
            blk.reshape(g, a, b, *x.shape[1:])
            for blk, a, b in zip(torch.split(x, sizes), layout[:-1], layout[1:], strict=True)
        ]

    # The graph operations ----------------------------------------------------------------
    def gather_src(self, x: torch.Tensor) -> torch.Tensor:
        """``x[src]``: each edge gets the node row of its source (earlier layer)."""
        layout, g = self.spec.layout, self.num_graphs
        return torch.cat([
            self._node_block(x, k).unsqueeze(2).expand(g, layout[k], layout[k + 1], *x.shape[1:])
            .reshape(-1, *x.shape[1:]) for k in range(len(layout) - 1)
        ])

    def gather_dst(self, x: torch.Tensor) -> torch.Tensor:
        """``x[dst]``: each edge gets the node row of its target (later layer)."""
        layout, g = self.spec.layout, self.num_graphs
        return torch.cat([
            self._node_block(x, k + 1).unsqueeze(1).expand(g, layout[k], layout[k + 1], *x.shape[1:])
            .reshape(-1, *x.shape[1:]) for k in range(len(layout) - 1)
        ])

    def with_src(self, e: torch.Tensor, x: torch.Tensor, op=torch.mul) -> torch.Tensor:
        """``op(e, x[src])`` per edge, without materialising ``x[src]`` (a broadcast per block)."""
        return self._per_block(lambda k, blk: op(blk, self._node_block(x, k).unsqueeze(2)), e)

    def with_dst(self, e: torch.Tensor, x: torch.Tensor, op=torch.mul) -> torch.Tensor:
        """``op(e, x[dst])`` per edge."""
        return self._per_block(lambda k, blk: op(blk, self._node_block(x, k + 1).unsqueeze(1)), e)

    def src_plus_dst(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a[src] + b[dst]`` per edge (a broadcast sum per block)."""
        n = len(self.spec.layout) - 1
        return torch.cat([
            (self._node_block(a, k).unsqueeze(2) + self._node_block(b, k + 1).unsqueeze(1))
            .reshape(-1, *a.shape[1:]) for k in range(n)
        ])

    def _per_block(self, fn, e: torch.Tensor) -> torch.Tensor:
        return torch.cat([fn(k, blk).reshape(-1, *blk.shape[3:])
                          for k, blk in enumerate(self._edge_blocks(e))])

    def sum_at_dst(self, m: torch.Tensor) -> torch.Tensor:
        """``Σ_{j→i} m_{j→i}`` for every node i (inputs get 0)."""
        g, n0 = self.num_graphs, self.spec.layout[0]
        parts = [m.new_zeros(g * n0, *m.shape[1:])]
        parts += [b.sum(1).reshape(-1, *m.shape[1:]) for b in self._edge_blocks(m)]
        return torch.cat(parts)

    def sum_at_src(self, m: torch.Tensor) -> torch.Tensor:
        """``Σ_{j→k} m_{j→k}`` for every node j (outputs get 0)."""
        g, n_last = self.num_graphs, self.spec.layout[-1]
        parts = [b.sum(2).reshape(-1, *m.shape[1:]) for b in self._edge_blocks(m)]
        parts.append(m.new_zeros(g * n_last, *m.shape[1:]))
        return torch.cat(parts)

    def groups(self, which: str) -> RowGroups:
        """Row groups of ``"nodes"``, ``"fwd"`` edges (by target) or ``"bwd"`` edges (by source)."""
        if which not in self._groups:
            self._groups[which] = self._ranges(which)
        return self._groups[which]

    def _ranges(self, which: str) -> RowGroups:
        layout, g = self.spec.layout, self.num_graphs
        if which == "nodes":
            bounds = [0, layout[0], sum(layout[:-1]), sum(layout)]
        else:
            e = [a * b for a, b in zip(layout[:-1], layout[1:], strict=True)]
            total = sum(e)
            # fwd: every layer's edges end in hidden neurons except the last layer's (outputs);
            # bwd: every layer's edges start in hidden neurons except the first layer's (inputs).
            bounds = [0, 0, total - e[-1], total] if which == "fwd" else [0, e[0], total, total]
        return RowGroups(ranges=tuple((bounds[i] * g, bounds[i + 1] * g) for i in range(3)))

    def per_graph_nodes(self, x: torch.Tensor) -> torch.Tensor:
        """``(G, N_per_graph, ...)`` in each graph's own node order."""
        return torch.cat([self._node_block(x, k) for k in range(len(self.spec.layout))], dim=1)

    def per_graph_edges(self, x: torch.Tensor) -> torch.Tensor:
        """``(G, E_per_graph, ...)`` in each graph's own (source-major) edge order."""
        g = self.num_graphs
        return torch.cat([b.reshape(g, -1, *x.shape[1:]) for b in self._edge_blocks(x)], dim=1)


@functools.lru_cache(maxsize=64)
def _device_topology(spec: NetworkSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(node roles, node types, edge types) of ``spec`` on ``device``, copied there once: a
    host-to-GPU copy in every training step would synchronise it."""
    topo = topology(spec)
    return node_roles(spec).to(device), topo.node_type.to(device), topo.edge_type.to(device)


def from_weight_batch(batch: WeightBatch, input_value: float) -> FlatGraph:
    """The layer-major flat graph of B networks of one layout (vectorised over the batch).

    Built from the per-layer blocks directly: node block 0 is ``input_value``, node block l + 1
    the biases of layer l, edge block l the weights of layer l (``scalegmn.weightspace.graph.edge_block``).
    """
    net = batch.net
    spec = net.spec
    topo = topology(spec)
    device = net.biases[0].device
    g = batch.size
    layout = spec.layout
    role, node_type, edge_type = _device_topology(spec, device)
    graphs = torch.arange(g, device=device)
    node_off = topo.layer_offsets
    edge_off = topo.edge_offsets
    node_blocks = [torch.full((g * layout[0],), float(input_value), dtype=net.biases[0].dtype, device=device)]
    node_blocks += [b.reshape(-1) for b in net.biases]  # (G * n_k,) per layer
    values, roles, types, node_graph = [], [], [], []
    for k, n in enumerate(layout):
        lo, hi = node_off[k], node_off[k + 1]
        values.append(node_blocks[k])
        roles.append(role[lo:hi].repeat(g))
        types.append(node_type[lo:hi].repeat(g))
        node_graph.append(graphs.view(g, 1).expand(g, n).reshape(-1))
    edges, etypes, edge_graph, srcs, dsts = [], [], [], [], []
    block_start = [sum(layout[:k]) * g for k in range(len(layout))]
    d_e = edge_feature_dim(spec)
    for k in range(spec.n_layers):
        a, b = layout[k], layout[k + 1]
        lo, hi = edge_off[k], edge_off[k + 1]
        edges.append(edge_block(spec, k, net.weights[k]).reshape(-1, d_e))  # (G * a * b, d_e)
        etypes.append(edge_type[lo:hi].repeat(g))
        edge_graph.append(graphs.view(g, 1).expand(g, a * b).reshape(-1))
        gg = graphs.view(g, 1, 1)
        j = torch.arange(a, device=device).view(1, a, 1)
        i = torch.arange(b, device=device).view(1, 1, b)
        srcs.append((block_start[k] + gg * a + j).expand(g, a, b).reshape(-1))
        dsts.append((block_start[k + 1] + gg * b + i).expand(g, a, b).reshape(-1))
    n_in, n_out = layout[0], layout[-1]
    return FlatGraph(
        node_value=torch.cat(values),
        edge_value=torch.cat(edges),
        src=torch.cat(srcs),
        dst=torch.cat(dsts),
        node_role=torch.cat(roles),
        node_type=torch.cat(types),
        edge_type=torch.cat(etypes),
        node_graph=torch.cat(node_graph),
        edge_graph=torch.cat(edge_graph),
        odd=batch.odd_mask().to(device),
        in_nodes=torch.arange(g * n_in, device=device).reshape(g, n_in),
        out_nodes=block_start[-1] + torch.arange(g * n_out, device=device).reshape(g, n_out),
        spec=spec,
    )
