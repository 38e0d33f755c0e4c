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

A :class:`~scalegmn.weightspace.batch.MixedBatch` (networks of many architectures) becomes a
FlatGraph with ``spec=None`` (:func:`from_mixed_batch`): the general path. Its operations are
index-based (``index_select`` gathers, ``index_add`` sums over ``src``/``dst``), its graphs
follow :mod:`scalegmn.weightspace.graph`'s mixed-zoo conventions (``ZooSpec``: role-first
types, residual edges, kernels padded to one ``d_e``) and every node carries a scale kind
(``node_kind``: an index into ``SCALE_KINDS``, sign / positive / none) instead of a per-graph
odd flag. Rows are ordered by role as well (all input nodes, hidden nodes, output nodes; edges
input->hidden, hidden->hidden incl. residual, hidden->output, input->output), so the role
groups of the blocks stay contiguous slices.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import torch

from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.graph import (
    ZooSpec,
    edge_block,
    edge_feature_dim,
    mixed_edge_block,
    mixed_topology,
    topology,
)
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

    General path (``spec=None``, :func:`from_mixed_batch`): ``node_kind (N,)`` long, each
    node's scale kind (0 sign, 1 positive, 2 none: ``SCALE_KINDS``), ``zoo`` the conventions
    the graphs follow; ``odd`` is all False and unused.
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
    spec: NetworkSpec | None
    node_kind: torch.Tensor | None = None
    zoo: ZooSpec | None = None
    _groups: dict = field(default_factory=dict, repr=False)

    @property
    def num_graphs(self) -> int:
        """Number of graphs G."""
        return int(self.odd.shape[0])

    @property
    def num_nodes(self) -> int:
        """Number of nodes N over all graphs."""
        return int(self.node_value.shape[0])

    @property
    def general(self) -> bool:
        """True for the index-based path of mixed architectures (``spec is None``)."""
        return self.spec is None

    def node_odd(self) -> torch.Tensor:
        """``(N,)`` bool: whether each node's graph has an odd activation (sign group); on the
        general path ``(N,)`` long: each node's scale kind (``node_kind``)."""
        if self.node_kind is not None:
            return self.node_kind
        return self.odd[self.node_graph]

    def edge_kinds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per edge, the group of the node its forward message scales with (the target) and
        of the node its backward message scales with (the source): ``(E,)`` each, bool odd
        flags (per graph) or long kinds (general path)."""
        if self.node_kind is not None:
            return self.node_kind[self.dst], self.node_kind[self.src]
        odd = self.edge_odd()
        return odd, odd

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
        if self.spec is None:
            return x.index_select(0, self.src)
        layout, g = self.spec.layout, self.num_graphs
        return torch.cat([
            self._node_block(x, k).unsqueeze(2).expand(g, layout[k], layout[k + 1], *x.shape[1:])
            .reshape(-1, *x.shape[1:]) for k in range(len(layout) - 1)
        ])

    def gather_dst(self, x: torch.Tensor) -> torch.Tensor:
        """``x[dst]``: each edge gets the node row of its target (later layer)."""
        if self.spec is None:
            return x.index_select(0, self.dst)
        layout, g = self.spec.layout, self.num_graphs
        return torch.cat([
            self._node_block(x, k + 1).unsqueeze(1).expand(g, layout[k], layout[k + 1], *x.shape[1:])
            .reshape(-1, *x.shape[1:]) for k in range(len(layout) - 1)
        ])

    def with_src(self, e: torch.Tensor, x: torch.Tensor, op=torch.mul) -> torch.Tensor:
        """``op(e, x[src])`` per edge, without materialising ``x[src]`` (a broadcast per block)."""
        if self.spec is None:
            return op(e, x.index_select(0, self.src))
        return self._per_block(lambda k, blk: op(blk, self._node_block(x, k).unsqueeze(2)), e)

    def with_dst(self, e: torch.Tensor, x: torch.Tensor, op=torch.mul) -> torch.Tensor:
        """``op(e, x[dst])`` per edge."""
        if self.spec is None:
            return op(e, x.index_select(0, self.dst))
        return self._per_block(lambda k, blk: op(blk, self._node_block(x, k + 1).unsqueeze(1)), e)

    def src_plus_dst(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a[src] + b[dst]`` per edge (a broadcast sum per block)."""
        if self.spec is None:
            return a.index_select(0, self.src) + b.index_select(0, self.dst)
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
        if self.spec is None:
            return m.new_zeros(self.num_nodes, *m.shape[1:]).index_add_(0, self.dst, m)
        g, n0 = self.num_graphs, self.spec.layout[0]
        parts = [m.new_zeros(g * n0, *m.shape[1:])]
        parts += [b.sum(1).reshape(-1, *m.shape[1:]) for b in self._edge_blocks(m)]
        return torch.cat(parts)

    def sum_at_src(self, m: torch.Tensor) -> torch.Tensor:
        """``Σ_{j→k} m_{j→k}`` for every node j (outputs get 0)."""
        if self.spec is None:
            return m.new_zeros(self.num_nodes, *m.shape[1:]).index_add_(0, self.src, m)
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

    def _one_layout(self, what: str) -> None:
        if self.spec is None:
            raise ValueError(f"{what} needs one architecture per batch; this batch mixes "
                             "architectures (editing and neuron states take a WeightBatch)")

    def per_graph_nodes(self, x: torch.Tensor) -> torch.Tensor:
        """``(G, N_per_graph, ...)`` in each graph's own node order."""
        self._one_layout("per_graph_nodes")
        return torch.cat([self._node_block(x, k) for k in range(len(self.spec.layout))], dim=1)

    def per_graph_edges(self, x: torch.Tensor) -> torch.Tensor:
        """``(G, E_per_graph, ...)`` in each graph's own (source-major) edge order."""
        self._one_layout("per_graph_edges")
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


# The general path: networks of many architectures ------------------------------------------

#: Edge categories, in row order: by (source role, target role).
_EDGE_CATEGORIES = ((INPUT, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, OUTPUT), (INPUT, OUTPUT))


@functools.lru_cache(maxsize=256)
def _mixed_local(spec: NetworkSpec, zoo: ZooSpec, device: torch.device):
    """Per architecture, on ``device`` once: node roles/types/kinds, edges, and the local rows
    of each node role and edge category (:data:`_EDGE_CATEGORIES`)."""
    topo = mixed_topology(spec, zoo)
    layer = topo.node_layer
    role = torch.full_like(layer, HIDDEN)
    role[layer == 0] = INPUT
    role[layer == spec.n_layers] = OUTPUT
    src, dst = topo.edge_index
    node_rows = tuple(torch.nonzero(role == r).squeeze(-1).to(device) for r in (INPUT, HIDDEN, OUTPUT))
    edge_rows = tuple(torch.nonzero((role[src] == a) & (role[dst] == b)).squeeze(-1).to(device)
                      for a, b in _EDGE_CATEGORIES)
    move = {k: getattr(topo, k).to(device) for k in ("node_type", "node_kind", "edge_type")}
    return (role.to(device), move, src.to(device), dst.to(device), node_rows, edge_rows,
            topo.n_regular, topo.residual_slot)


def _role_order(counts: list[int], graphs: list[int], local: list[tuple[torch.Tensor, ...]],
                n_parts: int, device: torch.device) -> tuple[torch.Tensor, list[int]]:
    """Rows of the group-major concatenation (group k: ``graphs[k]`` graphs of ``counts[k]``
    rows each) re-ordered part by part (``local[k][p]``: part p's rows within one graph of
    group k); returns the order and the number of rows per part."""
    order, sizes, start = [], [], 0
    starts = []
    for c, g in zip(counts, graphs, strict=True):
        starts.append(start)
        start += c * g
    for p in range(n_parts):
        size = 0
        for k, (c, g) in enumerate(zip(counts, graphs, strict=True)):
            rows = local[k][p]
            if rows.numel() == 0:
                continue
            base = starts[k] + torch.arange(g, device=device).unsqueeze(1) * c
            order.append((base + rows.unsqueeze(0)).reshape(-1))
            size += rows.numel() * g
        sizes.append(size)
    return torch.cat(order), sizes


def from_mixed_batch(batch: MixedBatch, input_value: float, zoo: ZooSpec) -> FlatGraph:
    """The general (index-based) flat graph of networks of many architectures.

    Builds each architecture group's graph vectorised over its networks (a loop over groups,
    none over networks), concatenates them and orders the rows by role. ``zoo``: the
    conventions of the model (types, ``d_e``); every architecture must fit it.
    """
    device = batch.groups[0].biases[0].device
    dtype = batch.groups[0].biases[0].dtype
    values, edges, srcs, dsts, roles, ntypes, kinds, etypes, ngraph, egraph = ([] for _ in range(10))
    n_counts, e_counts, graphs, node_local, edge_local = [], [], [], [], []
    node_base = graph_base = 0
    for net in batch.groups:
        spec = net.spec
        zoo.check(spec, net.source or "a network of the batch")
        role, topo, src, dst, node_rows, edge_rows, n_regular, slot = _mixed_local(spec, zoo, device)
        g, n, e = int(net.batch_shape[0]), spec.n_nodes, src.numel()
        inputs = torch.full((g, spec.layout[0]), float(input_value), dtype=dtype, device=device)
        values.append(torch.cat([inputs, *net.biases], dim=-1).reshape(-1))
        blocks = [mixed_edge_block(spec, zoo, k, w).reshape(g, -1, zoo.d_e)
                  for k, w in enumerate(net.weights)]
        if e > n_regular:
            res = torch.zeros(g, e - n_regular, zoo.d_e, dtype=dtype, device=device)
            res[..., slot] = 1.0
            blocks.append(res)
        edges.append(torch.cat(blocks, dim=1).reshape(-1, zoo.d_e))
        offs = node_base + torch.arange(g, device=device).unsqueeze(1) * n
        srcs.append((offs + src).reshape(-1))
        dsts.append((offs + dst).reshape(-1))
        roles.append(role.repeat(g))
        ntypes.append(topo["node_type"].repeat(g))
        kinds.append(topo["node_kind"].repeat(g))
        etypes.append(topo["edge_type"].repeat(g))
        ids = graph_base + torch.arange(g, device=device).unsqueeze(1)
        ngraph.append(ids.expand(g, n).reshape(-1))
        egraph.append(ids.expand(g, e).reshape(-1))
        n_counts.append(n)
        e_counts.append(e)
        graphs.append(g)
        node_local.append(node_rows)
        edge_local.append(edge_rows)
        node_base += g * n
        graph_base += g
    node_order, node_sizes = _role_order(n_counts, graphs, node_local, 3, device)
    edge_order, edge_sizes = _role_order(e_counts, graphs, edge_local, 4, device)
    position = torch.empty_like(node_order)
    position[node_order] = torch.arange(node_order.numel(), device=device)
    role = torch.cat(roles)[node_order]
    n_graph = torch.cat(ngraph)[node_order]
    src = position[torch.cat(srcs)[edge_order]]
    dst = position[torch.cat(dsts)[edge_order]]
    n_in, n_out = zoo.n_in, zoo.n_out
    # Inputs come first and outputs last, each graph's in batch order: (G, n_in), (G, n_out).
    in_nodes = torch.arange(node_sizes[0], device=device).reshape(graph_base, n_in)
    out_nodes = (node_sizes[0] + node_sizes[1]
                 + torch.arange(node_sizes[2], device=device)).reshape(graph_base, n_out)
    graph = FlatGraph(
        node_value=torch.cat(values)[node_order],
        edge_value=torch.cat(edges)[edge_order],
        src=src, dst=dst, node_role=role,
        node_type=torch.cat(ntypes)[node_order],
        edge_type=torch.cat(etypes)[edge_order],
        node_graph=n_graph,
        edge_graph=torch.cat(egraph)[edge_order],
        odd=torch.zeros(graph_base, dtype=torch.bool, device=device),
        in_nodes=in_nodes, out_nodes=out_nodes, spec=None,
        node_kind=torch.cat(kinds)[node_order], zoo=zoo,
    )
    a, b = node_sizes[0], node_sizes[0] + node_sizes[1]
    graph._groups["nodes"] = RowGroups(ranges=((0, a), (a, b), (b, b + node_sizes[2])))
    c = list(itertools.accumulate(edge_sizes, initial=0))
    graph._groups["fwd"] = RowGroups(ranges=((0, 0), (0, c[2]), (c[2], c[4])))
    if edge_sizes[3] == 0:  # no input->output edges (one-layer networks): sources contiguous
        graph._groups["bwd"] = RowGroups(ranges=((0, c[1]), (c[1], c[3]), (c[3], c[3])))
    else:
        graph._groups["bwd"] = RowGroups.from_roles(role.index_select(0, src))
    return graph
