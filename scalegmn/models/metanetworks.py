"""ScaleGMN models and the baselines, built from a :class:`~scalegmn.models.presets.ModelConfig`.

``build_model(config, spec, task=..., n_outputs=..., execution=...)`` returns a ``torch.nn.Module``
(its precision and memory policy: :class:`~scalegmn.execution.ExecutionConfig`, kept as
``model.execution``):

- invariant tasks (classification, generalization): ``model(batch) -> (B, n_outputs)``;
- editing: ``model(batch) -> (delta_weights, delta_biases)`` shaped like ``batch.net``.

``batch`` is a :class:`~scalegmn.weightspace.batch.WeightBatch` (B networks of one layout); it
becomes a :class:`~scalegmn.nn.graph_batch.FlatGraph`, the one graph every block runs on.

Zoos of mixed architectures (CNN Wild Park): build with ``spec`` a
:class:`~scalegmn.weightspace.graph.ZooSpec` (``ZooSpec.covering(specs)``: shared input and
output sizes, the most layers, the largest kernel) and ``symmetry: hetero`` (per-node scale
kinds: sign, positive or permutation only, from each neuron's activation and residual ties)
or ``kind: gmn`` / ``symmetry: permutation``. Such a model takes a
:class:`~scalegmn.weightspace.batch.MixedBatch` (or a WeightBatch, read as one group) and runs
on the general, index-based FlatGraph (:func:`~scalegmn.nn.graph_batch.from_mixed_batch`);
invariant tasks only.

Model (docs/model.md §2.4-§2.8)::

    h⁰ = PE_v(b · a_v),  e⁰ = PE_e(A_e w)               (linear, no bias: equivariant)
    for t in 1..T:  h̃, e, ẽ = Layer_t(h, e, ẽ);  h = S_t h + h̃ (skip?);  h = Dropout(h)
    y = Readout(h)          or, for editing,   (ΔW, Δb) = EditingHead(h, e)
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from scalegmn.errors import ConfigError
from scalegmn.execution import DEFAULT_EXECUTION, ExecutionConfig
from scalegmn.models.baselines import build_baseline
from scalegmn.models.neural_graphs import KINDS as NG_KINDS
from scalegmn.models.neural_graphs import build_neural_graph
from scalegmn.models.nfn_dws import KINDS as WEIGHT_SPACE_KINDS
from scalegmn.models.nfn_dws import build_weight_space_model, check_fits
from scalegmn.models.presets import ModelConfig
from scalegmn.nn.graph_batch import INPUT, OUTPUT, FlatGraph, from_mixed_batch, from_weight_batch
from scalegmn.nn.input_scale import LayerScale
from scalegmn.nn.layers import GMNLayer, LayerOptions, ScaleGMNLayer
from scalegmn.nn.lean import lean_active, lean_scope, plain_activation_mb
from scalegmn.nn.positional import PositionalEncoding
from scalegmn.nn.precision import apply_backend_flags, fp32, fp32_scope, precision_scope
from scalegmn.nn.readout import (
    BidirLastLayerReadout,
    DeepSetReadout,
    EditingHead,
    FullGraphReadout,
    LastLayerReadout,
)
from scalegmn.vocabulary import TASKS
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.graph import ZooSpec, edge_feature_dim, topology
from scalegmn.weightspace.network import NetworkSpec, scale_kind

log = logging.getLogger(__name__)

#: The torch dtype of each :data:`~scalegmn.execution.PRECISIONS` name.
#: The parameters' dtype of each precision: tf32 and bf16 keep float32 parameters (TF32 matmuls
#: and bfloat16 autocast are scopes and flags: :mod:`scalegmn.nn.precision`).
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64,
                                  "tf32": torch.float32, "bf16": torch.float32}


def as_flat_graph(batch: WeightBatch | MixedBatch | FlatGraph, input_value: float,
                  zoo: ZooSpec | None = None) -> FlatGraph:
    """A :class:`FlatGraph` from a WeightBatch, a MixedBatch (with ``zoo``) or a FlatGraph;
    with ``zoo`` every batch takes the general path (mixed-zoo types and ``d_e``)."""
    if isinstance(batch, FlatGraph):
        if (zoo is not None) != batch.general or (zoo is not None and batch.zoo != zoo):
            raise ValueError("this FlatGraph was built for other graph conventions than the model's "
                             f"(model: {zoo or 'one architecture'}, graph: {batch.zoo or 'one architecture'})")
        return batch
    if zoo is not None and isinstance(batch, WeightBatch):
        batch = MixedBatch((batch.net,), y=batch.y, index=batch.index)
    if isinstance(batch, MixedBatch):
        if zoo is None:
            raise ValueError("a MixedBatch (networks of several architectures) needs a model built "
                             "for mixed architectures: build_model(config, ZooSpec.covering(specs), ...)")
        return from_mixed_batch(batch, input_value, zoo)
    if isinstance(batch, WeightBatch):
        return from_weight_batch(batch, input_value)
    raise TypeError("a ScaleGMN model takes a WeightBatch, a MixedBatch or a FlatGraph, "
                    f"got {type(batch).__name__}")


def resolve_backward_inverse(config: ModelConfig) -> bool:
    """Whether backward edges carry ``e / ‖e‖²`` (``auto``: for the scale and hetero symmetries)."""
    if config.backward_edges == "auto":
        return config.symmetry in ("scale", "hetero")
    return config.backward_edges == "inverse"


class ScaleGMN(nn.Module):
    """Forward or bidirectional ScaleGMN, or the permutation-only GMN (``kind="gmn"``)."""

    def __init__(self, config: ModelConfig, spec: NetworkSpec | ZooSpec, *, task: str,
                 n_outputs: int, execution: ExecutionConfig = DEFAULT_EXECUTION) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task {task!r}: use one of {TASKS}")
        c = config
        perm = c.kind == "gmn" or c.symmetry == "permutation"
        symmetry = "permutation" if perm else c.symmetry
        # A ZooSpec: networks of many architectures, the general graph path.
        self.zoo = spec if isinstance(spec, ZooSpec) else None
        if self.zoo is not None and task == "editing":
            raise ConfigError("task", "editing needs one architecture per zoo; a model for mixed "
                                      "architectures (ZooSpec) takes invariant tasks only")
        if self.zoo is not None:
            spec = None
        self.config, self.spec, self.task = c, spec, task
        self.execution = execution
        self.equivariant = task == "editing"
        self.bidirectional = c.direction == "bidirectional"
        self.input_value = c.input_node_value
        d = c.d_hid
        zoo = self.zoo
        n_node_types = zoo.n_node_types if zoo else topology(spec).n_node_types
        n_edge_types = zoo.n_edge_types if zoo else topology(spec).n_edge_types
        d_e = zoo.d_e if zoo else edge_feature_dim(spec)
        n_layers_net = zoo.max_layers if zoo else spec.n_layers
        n_in, n_out = (zoo.n_in, zoo.n_out) if zoo else (spec.layout[0], spec.layout[-1])
        mlp_dropout = c.dropout if c.dropout_all else 0.0
        mlp_kw = dict(d_hid=d, layer_norm=c.layer_norm, dropout=mlp_dropout)

        self.node_proj = nn.Linear(1, d, bias=False)
        self.edge_proj = nn.Linear(d_e, d, bias=False)
        # Multiplicative PE keeps scale equivariance on hidden nodes; the GMN adds everywhere.
        self.node_pe = (PositionalEncoding(n_node_types, d, multiplicative=not perm)
                        if c.node_pe else None)
        self.edge_pe = (PositionalEncoding(n_edge_types, d, multiplicative=not perm)
                        if c.edge_pe else None)
        self.sum_on_io = c.sum_on_io
        self._checked_specs: set[NetworkSpec] = set()  # architectures whose types fit the PE tables

        opt = LayerOptions(
            d=d, symmetry=symmetry, tau=c.tau, layer_norm=c.layer_norm, mlp_dropout=mlp_dropout,
            n_io_mlps=c.num_mlps - 1, mlp_on_io=c.mlp_on_io, pe_msg=c.pe_msg and c.node_pe,
            pe_upd=c.pe_upd and c.node_pe, bw_inverse=resolve_backward_inverse(c) and not perm,
            bw_eps=c.backward_eps, bw_update=symmetry == "scale", execution=execution,
            mixed=zoo is not None and symmetry == "hetero",
        )
        layer_cls = GMNLayer if perm else ScaleGMNLayer
        self.layers = nn.ModuleList()
        self.skips = nn.ModuleList()
        for t in range(c.n_layers):
            last = t == c.n_layers - 1
            if self.equivariant:
                d_node_out, d_edge_out = (1, d_e) if last else (d, d)
            else:
                d_node_out, d_edge_out = d, (None if last else d)
            self.layers.append(layer_cls(opt, bidirectional=self.bidirectional,
                                         d_node_out=d_node_out, d_edge_out=d_edge_out))
            has_skip = c.gnn_skip and not (self.equivariant and last)
            self.skips.append(nn.Linear(d, d, bias=False) if has_skip else nn.Identity())
        self.has_skip = [c.gnn_skip and not (self.equivariant and t == c.n_layers - 1)
                         for t in range(c.n_layers)]
        self.dropout = nn.Dropout(c.dropout) if c.dropout > 0 else nn.Identity()
        self.input_scale = LayerScale(n_layers_net)

        if self.equivariant:
            self.head = EditingHead(spec.n_layers, c.out_scale)
        elif c.readout == "full_graph":
            self.head = (DeepSetReadout(d, n_outputs, **mlp_kw) if perm else
                         FullGraphReadout(n_in, n_out, d, n_outputs, opt.tau_module(d), **mlp_kw))
        elif self.bidirectional:
            self.head = BidirLastLayerReadout(n_in, n_out, d, n_outputs, **mlp_kw)
        else:
            self.head = LastLayerReadout(n_out, d, n_outputs, **mlp_kw)

    def embed(self, g: FlatGraph):
        """Initial ``h (N, d)``, ``e (E, d)`` and node encodings ``P[type] (N, d)`` (or None)."""
        if not g.general and g.spec not in self._checked_specs:  # once per architecture (topology is host data)
            topo = topology(g.spec)
            for pe, n_types in ((self.node_pe, topo.n_node_types), (self.edge_pe, topo.n_edge_types)):
                if pe is not None:
                    pe.check(n_types)
            self._checked_specs.add(g.spec)
        h = self.node_proj(g.node_value.unsqueeze(-1).to(self.node_proj.weight.dtype))
        if self.execution.lean and lean_active():
            # The projection and the gathered edge PE are (E, d) each; recomputing them
            # (a rank-d_e product) is cheaper than keeping them for backward.
            e = checkpoint(self._embed_edges, g.edge_value, g.edge_type, use_reentrant=False)
        else:
            e = self._embed_edges(g.edge_value, g.edge_type)
        pe = None
        if self.node_pe is not None:
            io = (g.node_role == INPUT) | (g.node_role == OUTPUT)
            h = self.node_pe(h, g.node_type, io if self.sum_on_io else None)
            pe = self.node_pe.lookup(g.node_type)
        return h, e, pe

    def _embed_edges(self, edge_value: torch.Tensor, edge_type: torch.Tensor) -> torch.Tensor:
        e = self.edge_proj(edge_value.to(self.edge_proj.weight.dtype))
        return e if self.edge_pe is None else self.edge_pe(e, edge_type)

    def forward(self, batch):
        """``(G, n_outputs)`` for invariant tasks; per-layer ``(ΔW, Δb)`` (equivariant) for editing."""
        if self.zoo is not None and not isinstance(batch, FlatGraph):
            batch = as_flat_graph(self.input_scale(batch), self.input_value, self.zoo)
        batch = self.input_scale(batch)
        precision = self.execution.precision
        with precision_scope(precision, self.node_proj.weight.device.type):
            out = self._forward_scaled(batch)
        if precision == "bf16":  # losses and edits in float32, whatever autocast produced
            out = (tuple(tuple(t.float() for t in ts) for ts in out) if self.equivariant
                   else out.float())
        return self.input_scale.unscale(*out) if self.equivariant else out

    def _forward_scaled(self, batch):
        chunk = self.execution.checkpoint_chunk
        if (isinstance(batch, WeightBatch) and self.execution.checkpoint and torch.is_grad_enabled()
                and batch.size > chunk):
            # Graphs are independent: with checkpointing, running the batch in chunks bounds the
            # activations recomputed at once during backward by one chunk's; same result.
            outs = [self._forward_graph(as_flat_graph(sub, self.input_value, self.zoo))
                    for sub in _split_batch(batch, chunk)]
            if self.equivariant:
                return tuple(tuple(torch.cat(ts) for ts in zip(*(o[i] for o in outs), strict=True))
                             for i in range(2))
            return torch.cat(outs)
        return self._forward_graph(as_flat_graph(batch, self.input_value, self.zoo))

    def use_lean(self, g: FlatGraph) -> bool:
        """Lean autograd for this batch (training only): by the execution policy, from the
        per-edge activation memory plain autograd would keep (it trades compute for memory)."""
        if not (self.execution.lean and torch.is_grad_enabled()):
            return False
        c, dtype = self.config, self.edge_proj.weight.dtype
        mb = plain_activation_mb(c.n_layers, int(g.edge_value.shape[0]), c.d_hid, dtype.itemsize)
        return self.execution.use_lean(mb)

    def _forward_graph(self, g: FlatGraph):
        with lean_scope(self.use_lean(g)):
            return self._forward_layers(g)

    def _forward_layers(self, g: FlatGraph):
        h, e = self._states(g)
        # The head in float32 under bf16 (small: G or E rows): outputs keep float32 resolution.
        with fp32_scope(h):
            if self.equivariant:
                return self.head(fp32(h), fp32(e), g)
            return self.head(fp32(h), g)

    def _states(self, g: FlatGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """The node and edge states after the last GNN layer."""
        h, e, pe = self.embed(g)
        bw = e if self.bidirectional else None
        hetero = self.config.symmetry == "hetero"
        node_odd = g.node_odd() if hetero else None
        # Per graph, both ends of an edge share the flag; with per-node kinds (general path)
        # forward messages scale with the target, backward ones with the source.
        edge_odd = (g.edge_kinds() if g.general else g.edge_odd()) if hetero else None
        for layer, skip, has_skip in zip(self.layers, self.skips, self.has_skip, strict=True):
            h_new, e, bw = layer(g, h, e, bw, pe, node_odd, edge_odd)
            h = self.dropout(skip(h) + h_new if has_skip else h_new)
        return h, e

    def node_states(self, batch: WeightBatch) -> list[torch.Tensor]:
        """The final state of every neuron, per layer of neurons: ``[(B, n_k, d)]`` for k = 0
        (inputs) .. L (outputs). Permutation-equivariant; under the scaling group each hidden
        neuron's state transforms as the model's symmetry says (sign: odd, scale: positively
        homogeneous), which is what a neuron matching between two networks needs."""
        if self.zoo is not None:
            raise ValueError("node_states needs a model for one architecture, not a ZooSpec")
        g = as_flat_graph(self.input_scale(batch), self.input_value)
        h = g.per_graph_nodes(self._states(g)[0])
        return list(torch.split(h, list(self.spec.layout), dim=1))


def _split_batch(batch: WeightBatch, size: int) -> list[WeightBatch]:
    out = []
    for start in range(0, batch.size, size):
        sl = slice(start, start + size)
        net = batch.net.replace(weights=tuple(w[sl] for w in batch.net.weights),
                                biases=tuple(b[sl] for b in batch.net.biases), meta={})
        out.append(WeightBatch(
            net,
            y=None if batch.y is None else batch.y[sl],
            sign_mask=None if batch.sign_mask is None else batch.sign_mask[sl],
            index=None if batch.index is None else batch.index[sl],
        ))
    return out


def check_symmetry_fits(config: ModelConfig, spec: NetworkSpec | ZooSpec) -> None:
    """Raise ConfigError when the model's symmetry is not the zoo's (sign needs sine/tanh
    networks, scale needs ReLU; hetero and permutation fit any; dws reads MLPs only); a
    ZooSpec (mixed architectures) needs scalegmn with hetero or permutation, gmn, statnn or ng_*."""
    if isinstance(spec, ZooSpec):
        if config.kind not in ("scalegmn", "gmn", "statnn", *NG_KINDS):
            raise ConfigError("model.kind", f"{config.kind!r} reads one architecture; for a zoo of "
                                            "mixed architectures use scalegmn, gmn, statnn, ng_gnn or ng_t")
        if config.kind == "scalegmn" and config.symmetry not in ("hetero", "permutation"):
            raise ConfigError("model.symmetry", f"{config.symmetry!r} assumes one activation; a zoo "
                                                "of mixed architectures needs 'hetero' (per-neuron "
                                                "kinds) or 'permutation'")
        return
    if config.kind in WEIGHT_SPACE_KINDS:
        check_fits(config.kind, spec)
    if config.kind != "scalegmn":
        return
    act = spec.hidden_activation
    if config.symmetry == "sign" and scale_kind(act) != "sign":
        raise ConfigError("model.symmetry", f"'sign' needs sine/tanh networks, these use {act}; "
                                            "use 'scale' for ReLU or 'hetero' for mixed zoos")
    if config.symmetry == "scale" and scale_kind(act) != "positive":
        raise ConfigError("model.symmetry", f"'scale' needs ReLU networks, these use {act}; "
                                            "use 'sign' for sine/tanh or 'hetero' for mixed zoos")


def deepest_spec(zoo: ZooSpec) -> NetworkSpec:
    """A NetworkSpec as deep as the zoo's deepest network (its inputs and outputs; hidden
    widths 1): what the layer-slot baselines (StatNN) are built from."""
    n = zoo.max_layers
    return NetworkSpec((zoo.n_in, *([1] * (n - 1)), zoo.n_out), ("identity",) * n)


def build_model(config: ModelConfig, spec: NetworkSpec | ZooSpec, *, task: str, n_outputs: int,
                execution: ExecutionConfig = DEFAULT_EXECUTION) -> nn.Module:
    """The model a config describes, for networks of architecture ``spec`` (a NetworkSpec) or
    of a zoo of mixed architectures (a :class:`ZooSpec`: ScaleGMN hetero/permutation or GMN,
    taking MixedBatches), executed as ``execution`` says (parameters in its precision; the
    policy kept as ``model.execution``)."""
    check_symmetry_fits(config, spec)
    if config.kind in ("mlp", "statnn"):
        if isinstance(spec, ZooSpec):  # StatNN fills one slot per layer of the deepest network
            spec = deepest_spec(spec)
        model = build_baseline(config, spec, task=task, n_outputs=n_outputs)
        model.execution = execution  # the baselines use its precision and micro-batching only
    elif config.kind in WEIGHT_SPACE_KINDS:
        model = build_weight_space_model(config, spec, task=task, n_outputs=n_outputs)
        model.execution = execution
    elif config.kind in NG_KINDS:
        model = build_neural_graph(config, spec, task=task, n_outputs=n_outputs, execution=execution)
    else:
        model = ScaleGMN(config, spec, task=task, n_outputs=n_outputs, execution=execution)
    model.to(DTYPES[execution.precision])
    apply_backend_flags(execution.precision, execution.deterministic)
    log.debug("built %s %s model: %d parameters", config.kind, config.direction, count_parameters(model))
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
