"""Neural Graphs' metanetworks (Kofinas et al., ICLR 2024) as baselines: ``ng_gnn`` and ``ng_t``.

Both read a network as NG's *neural graph*: one node per neuron, one edge per weight (our
:mod:`scalegmn.weightspace.graph`), built as a :class:`~scalegmn.nn.graph_batch.FlatGraph`
and processed through its index arrays only (``src``, ``dst``, ``node_graph``, ``edge_graph``,
``node_type``, ``edge_type``, ``out_nodes``), so the same code runs on batches that mix
architectures once a FlatGraph of such a batch is given.

Embedding (NG's ``GraphConstructor``)::

    h⁰_i = Lin(γ(b_i)) + P_node[type_i]      e⁰_ji = Lin(γ(W_ij)) + P_edge[type_ji]

``γ``: random Fourier features of std ``fourier_sigma`` (NG's ``inp_factor``; 0: linear). Node
types give each input neuron, each output neuron and each hidden *layer* its own embedding
(NG's layer-wise positional embeddings): hidden neurons of a layer stay interchangeable, so the
models are invariant (equivariant) to hidden-neuron permutations, and to nothing more: they are
**not** invariant to the sign flips or positive rescalings that ScaleGMN respects (a test shows
it). Edge-type embeddings are ours (NG has none); their types are per layer too.

- ``ng_gnn``: ``n_layers`` :class:`~scalegmn.nn.neural_graph_layers.PNALayer` (PNA with FiLM
  edge modulation), LayerNorm + SiLU + dropout between layers and an
  :class:`~scalegmn.nn.neural_graph_layers.NGEdgeUpdate` after each (NG's ``final_edge_update:
  False``; for editing the edges are updated after the last layer too, so ΔW sees its nodes).
  ``direction: bidirectional`` adds the reversed edges with features ``[0, w, w]`` beside the
  forward ``[w, 0, w]`` (NG's ``rev_edge_features``, used for INRs); forward-only, a node
  hears only its inputs, so the outputs read the first layer's weights after 3 layers.
- ``ng_t``: ``n_layers`` :class:`~scalegmn.nn.relational_attention.RTLayer`: attention of every
  node over all nodes of its graph (``attention: all_nodes``, NG's), edge states on every pair
  (a learned "no edge" state where there is no weight), updated each layer but the last (kept
  for editing). ``attention: neighbours`` keeps only the pairs of connected nodes (both ways)
  and of each node with itself: about half the pairs of an INR, a third of a CNN's.
  Node ``i`` reads pair ``(i, j)``, which holds the weight ``i → j``: forward-only, the weights
  reach a node from the layer after it, and the outputs hear the first layer late (all nodes:
  weakly after 2 layers; neighbours: after 4). ``direction: bidirectional`` gives the reversed
  pairs ``[0, w, w]`` too (NG's ``rev_edge_features``), so information flows both ways.

Invariant tasks read the output neurons only, so both models run their last layer on the
messages into output nodes alone (same output and gradients; a third of the work less at 3
layers); editing runs every layer on the whole graph.

Widths: node ``d_hid``; edge ``d_edge`` (null: ``d_hid`` for ng_gnn, ``d_hid // 2`` for ng_t,
NG's ratios); ng_t's attention, node-MLP and output widths ``2 d_hid`` and edge-MLP width
``2 d_edge`` (NG's INR and CNN-zoo configs), ``n_heads`` heads.

Heads: invariant tasks read the output neurons' states, concatenated (NG's ``pooling_method:
cat``, ``pooling_layer_idx: last``), through an MLP (ng_gnn: ``d_hid, d_hid`` hidden, ReLU;
ng_t: ``2 d_hid``). Editing: per-node and per-edge MLPs to ``Δb_i`` and ``ΔW_ij`` (``d_e``
channels), scaled per layer by :class:`~scalegmn.nn.readout.EditingHead` (NG's
``weight_scale``/``bias_scale``, init ``out_scale``).
"""

from __future__ import annotations

import torch
from torch import nn

from scalegmn.errors import ConfigError
from scalegmn.execution import DEFAULT_EXECUTION, ExecutionConfig
from scalegmn.models.presets import ModelConfig
from scalegmn.nn.graph_batch import FlatGraph, from_mixed_batch, from_weight_batch
from scalegmn.nn.input_scale import LayerScale
from scalegmn.nn.neural_graph_layers import (
    NGEdgeUpdate,
    PNALayer,
    ValueEmbedding,
    in_degree_histogram,
)
from scalegmn.nn.positional import PositionalEncoding
from scalegmn.nn.precision import precision_scope
from scalegmn.nn.readout import EditingHead
from scalegmn.nn.relational_attention import NodePairs, RTLayer
from scalegmn.vocabulary import TASKS
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.graph import ZooSpec, edge_feature_dim, topology
from scalegmn.weightspace.network import NetworkSpec

KINDS = ("ng_gnn", "ng_t")


def _mlp(sizes: list[int]) -> nn.Sequential:
    """``Lin -> ReLU -> ... -> Lin`` through ``sizes`` (NG's output projections)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class NeuralGraphModel(nn.Module):
    """NG-GNN (``kind="ng_gnn"``) or NG-T (``kind="ng_t"``) on the neural graph of a batch.

    Shapes:
        ``batch``: a :class:`WeightBatch` of ``G`` networks of ``spec``'s layout (or a
        :class:`FlatGraph` of ``G`` graphs) -> ``(G, n_outputs)``; for editing, per layer
        ``(ΔW_l (G, *W_l.shape), Δb_l (G, *b_l.shape))``.
    """

    def __init__(self, config: ModelConfig, spec: NetworkSpec | ZooSpec, *, task: str, n_outputs: int,
                 execution: ExecutionConfig = DEFAULT_EXECUTION) -> None:
        super().__init__()
        if config.kind not in KINDS:
            raise ValueError(f"kind {config.kind!r}: a Neural Graphs model is one of {KINDS}")
        if task not in TASKS:
            raise ValueError(f"task {task!r}: use one of {TASKS}")
        # A ZooSpec: networks of many architectures (CNN Wild Park), the general graph path.
        self.zoo = spec if isinstance(spec, ZooSpec) else None
        if self.zoo is not None and task == "editing":
            raise ConfigError("task", "editing needs one architecture per zoo; a model for mixed "
                                      "architectures (ZooSpec) takes invariant tasks only")
        self.kind, self.spec, self.task, self.execution = config.kind, spec, task, execution
        self.equivariant = task == "editing"
        self.input_value = config.input_node_value
        gnn = config.kind == "ng_gnn"
        d = config.d_hid
        d_edge = config.d_edge or (d if gnn else max(d // 2, 1))
        zoo = self.zoo
        # PNA's degree statistics come from one architecture: for a zoo, a nominal network as
        # deep as its deepest, 16 channels wide (they only set a normalisation constant).
        nominal = (NetworkSpec((zoo.n_in, *([16] * (zoo.max_layers - 1)), zoo.n_out), ("identity",) * zoo.max_layers)
                   if zoo else spec)
        topo = topology(nominal)
        d_e = zoo.d_e if zoo else edge_feature_dim(spec)
        n_node_types = zoo.n_node_types if zoo else topo.n_node_types
        n_edge_types = zoo.n_edge_types if zoo else topo.n_edge_types
        n_net_layers = zoo.max_layers if zoo else spec.n_layers
        self.reverse = config.direction == "bidirectional"
        self.n_edge_types = n_edge_types
        self.node_embed = ValueEmbedding(1, d, config.fourier_sigma)
        self.edge_embed = ValueEmbedding(3 * d_e if self.reverse else d_e, d_edge, config.fourier_sigma)
        self.node_pe = PositionalEncoding(n_node_types, d, multiplicative=False)
        self.edge_pe = PositionalEncoding(n_edge_types * (2 if self.reverse else 1), d_edge,
                                          multiplicative=False)
        self._checked_specs: set[NetworkSpec] = set()
        self.input_scale = LayerScale(n_net_layers)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        n_layers = config.n_layers
        n_out = zoo.n_out if zoo else spec.layout[-1]
        if gnn:
            src, dst = topo.edge_index
            if self.reverse:
                src, dst = torch.cat([src, dst]), torch.cat([dst, src])
            deg = in_degree_histogram(dst, topo.n_nodes)
            self.convs = nn.ModuleList(PNALayer(d, d_edge, deg) for _ in range(n_layers))
            self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(n_layers - 1))
            n_updates = n_layers if self.equivariant else n_layers - 1
            self.edge_updates = nn.ModuleList(NGEdgeUpdate(d, d_edge) for _ in range(n_updates))
            head_sizes = [n_out * d, d, d, n_outputs]
        else:
            if (2 * d) % config.n_heads:
                raise ConfigError("model.n_heads", f"ng_t's attention width 2 * d_hid = {2 * d} must be "
                                                   f"a multiple of n_heads = {config.n_heads}")
            self.attend_all = config.attention == "all_nodes"
            self.no_edge = nn.Parameter(torch.randn(d_edge))
            self.layers = nn.ModuleList(
                RTLayer(d, d_edge, d_attn=2 * d, d_node_hid=2 * d, d_edge_hid=2 * d_edge,
                        n_heads=config.n_heads, dropout=config.dropout,
                        edge_update=self.equivariant or t < n_layers - 1)
                for t in range(n_layers))
            head_sizes = [n_out * d, 2 * d, n_outputs]
        if self.equivariant:
            self.node_out = _mlp([d, d, 1])
            self.edge_out = _mlp([d_edge, d_edge, d_e])
            self.head = EditingHead(spec.n_layers, config.out_scale)
        else:
            self.readout = _mlp(head_sizes)
        self.n_out = n_out

    # Graph and embedding --------------------------------------------------------------------
    def flat_graph(self, batch) -> FlatGraph:
        """The batch as a FlatGraph (a WeightBatch or, for a model of a zoo, a MixedBatch is
        converted; a FlatGraph is used as is)."""
        if isinstance(batch, FlatGraph):
            return batch
        if self.zoo is not None and isinstance(batch, WeightBatch):
            batch = MixedBatch((batch.net,), y=batch.y, index=batch.index)
        if isinstance(batch, MixedBatch):
            if self.zoo is None:
                raise ValueError("a MixedBatch (networks of several architectures) needs a model built "
                                 "for mixed architectures: build_model(config, ZooSpec.covering(specs), ...)")
            return from_mixed_batch(batch, self.input_value, self.zoo)
        if isinstance(batch, WeightBatch):
            return from_weight_batch(batch, self.input_value)
        raise TypeError("a Neural Graphs model takes a WeightBatch, a MixedBatch or a FlatGraph, "
                        f"got {type(batch).__name__}")

    def _check_types(self, g: FlatGraph) -> None:
        """The graph's types fit the embedding tables (once per architecture; a graph without
        one architecture is checked from its type tensors, which synchronises a GPU; a zoo's
        graph was checked against the zoo when it was built)."""
        if self.zoo is not None and g.zoo == self.zoo:
            return
        if not isinstance(g.spec, NetworkSpec):
            self.node_pe.check(int(g.node_type.max()) + 1)
            self.edge_pe.check((int(g.edge_type.max()) + 1) * (2 if self.reverse else 1))
            return
        if g.spec in self._checked_specs:
            return
        topo = topology(g.spec)
        self.node_pe.check(topo.n_node_types)
        self.edge_pe.check(topo.n_edge_types * (2 if self.reverse else 1))
        self._checked_specs.add(g.spec)

    def _nodes(self, g: FlatGraph) -> torch.Tensor:
        """``h⁰ (N, d)``: the bias (input value) embedded, plus the node type's embedding."""
        return self.node_embed(g.node_value.unsqueeze(-1)) + self.node_pe.lookup(g.node_type)

    # Forward --------------------------------------------------------------------------------
    def forward(self, batch):
        """``(G, n_outputs)`` for invariant tasks; per-layer ``(ΔW, Δb)`` for editing."""
        batch = self.input_scale(batch)
        g = self.flat_graph(batch)
        self._check_types(g)
        precision = self.execution.precision
        with precision_scope(precision, self.node_pe.table.device.type):
            h, e = (self._gnn if self.kind == "ng_gnn" else self._transformer)(g)
            if not self.equivariant:
                if g.out_nodes.shape[1] != self.n_out:
                    raise ValueError(f"the model was built for networks with {self.n_out} outputs, "
                                     f"these have {g.out_nodes.shape[1]}")
                out = self.readout(h.index_select(0, g.out_nodes.reshape(-1)).reshape(g.num_graphs, -1))
                return out.float() if precision == "bf16" else out
            delta = self.head(self.node_out(h), self.edge_out(e), g)
        if precision == "bf16":
            delta = tuple(tuple(t.float() for t in ts) for ts in delta)
        return self.input_scale.unscale(*delta)

    def _into_outputs(self, g: FlatGraph, rows: torch.Tensor) -> torch.Tensor:
        """The positions of ``rows (R,)`` (node ids) that are output nodes: what the last layer
        of an invariant model needs, as its readout reads the output nodes' states only."""
        is_out = torch.zeros(g.num_nodes, dtype=torch.bool, device=rows.device)
        is_out[g.out_nodes.reshape(-1)] = True
        return torch.nonzero(is_out.index_select(0, rows)).squeeze(-1)

    def _gnn(self, g: FlatGraph) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Node states ``(N, d)`` and the forward edges' states ``(E, d_edge)`` after NG-GNN.

        For invariant tasks the last layer passes only the messages into output nodes: their
        states are exact, the other nodes' are not final (nothing reads them), and the edge
        states are ``None``."""
        h = self._nodes(g)
        w = g.edge_value.to(h.dtype)
        src, dst, etype = g.src, g.dst, g.edge_type
        if self.reverse:
            zero = torch.zeros_like(w)
            w = torch.cat([torch.cat([w, zero, w], dim=-1), torch.cat([zero, w, w], dim=-1)])
            src, dst = torch.cat([g.src, g.dst]), torch.cat([g.dst, g.src])
            etype = torch.cat([etype, etype + self.n_edge_types])
        e = self.edge_embed(w) + self.edge_pe.lookup(etype)
        last = len(self.convs) - 1
        for t, conv in enumerate(self.convs):
            if t == last and not self.equivariant:
                keep = self._into_outputs(g, dst)
                return conv(h, e.index_select(0, keep), src.index_select(0, keep), dst.index_select(0, keep)), None
            h = conv(h, e, src, dst)
            if t < last:
                h = self.dropout(torch.nn.functional.silu(self.norms[t](h)))
            if t < len(self.edge_updates):
                e = self.edge_updates[t](h, e, src, dst)
        return h, e[: g.src.shape[0]]

    def _transformer(self, g: FlatGraph) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Node states ``(N, d)`` and the edges' pair states ``(E, d_edge)`` after NG-T.

        For invariant tasks the last layer (no edge update) attends from the output nodes only:
        their states are exact, the other nodes' are not final (nothing reads them), and the
        pair states are ``None``."""
        h = self._nodes(g)
        if self.attend_all:
            pairs = NodePairs.build(g.node_graph, g.num_graphs, g.src, g.dst, g.edge_graph)
        else:
            pairs = NodePairs.neighbours(g.src, g.dst, g.num_nodes)
        w = g.edge_value.to(h.dtype)
        e = self.no_edge.to(h.dtype).expand(pairs.n_pairs, -1)
        if self.reverse:  # pair (i, j) reads [w_ij, w_ji, w_ij + w_ji], as NG's rev_edge_features
            zero = torch.zeros_like(w)
            back = self.edge_embed(torch.cat([zero, w, w], dim=-1)) + self.edge_pe.lookup(
                g.edge_type + self.n_edge_types)
            e = e.index_copy(0, pairs.reverse.index_select(0, pairs.edge_pair), back)
            w = torch.cat([w, zero, w], dim=-1)
        edges = self.edge_embed(w) + self.edge_pe.lookup(g.edge_type)
        e = e.index_copy(0, pairs.edge_pair, edges)
        last = len(self.layers) - 1
        for t, layer in enumerate(self.layers):
            if t == last and not self.equivariant:
                keep = self._into_outputs(g, pairs.first)
                none = keep[:0]
                out_pairs = NodePairs(pairs.first.index_select(0, keep), pairs.second.index_select(0, keep),
                                      reverse=none, edge_pair=none)
                return layer(h, e.index_select(0, keep), out_pairs)[0], None
            h, e = layer(h, e, pairs)
        return h, e.index_select(0, pairs.edge_pair)


def build_neural_graph(config: ModelConfig, spec: NetworkSpec | ZooSpec, *, task: str, n_outputs: int,
                       execution: ExecutionConfig = DEFAULT_EXECUTION) -> NeuralGraphModel:
    """The ``ng_gnn`` or ``ng_t`` model of ``config`` for networks of ``spec``."""
    return NeuralGraphModel(config, spec, task=task, n_outputs=n_outputs, execution=execution)
