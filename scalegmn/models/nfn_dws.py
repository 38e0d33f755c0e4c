"""Weight-space baselines: NFN (Zhou et al., NeurIPS'23) and DWSNets (Navon et al., ICML'23).

Both read a network as its weight space (the tensors ``W_l``, ``b_l``, not a graph) and stack
linear layers that are equivariant to a group of neuron permutations, with a pointwise ReLU
between them; an invariant pool and an MLP give the prediction, the equivariant features
themselves give an edit ``(ΔW_l, Δb_l)``.

Group (which neuron layers ``k = 0 .. L`` of ``(n_0, ..., n_L)`` are permuted):

- ``nfn_np`` (neuron permutation, NP): every layer, inputs and outputs included.
- ``nfn_hnp`` (hidden neuron permutation, HNP) and ``dws``: the hidden layers ``1 .. L-1``
  only; the networks' true symmetry. Inputs and outputs keep their order.

Layer (:class:`EquivariantLayer`). Each block (``W_l`` with indices ``(n_{l+1}, n_l)``, ``b_l``
with ``(n_{l+1})``) is kept as ``(B, *permuted indices, channels)``; indices of layers the group
fixes and the conv kernel taps are folded into the channels (as NFN does for kernels). For a
target block T, every source block S and every set K of permuted indices S and T share, the
source pooled over its other permuted indices (mean for NFN, max for DWS: each repository's
default) is mixed by a linear map over channels and broadcast over T's other indices. That is
the complete basis of linear maps between the blocks that commute with the group (DWSNets'
weight->weight, weight->bias, bias->weight and bias->bias blocks, NFN's NF-layers): the
pointwise term, the row and column pooling/broadcast terms, the adjacent-layer terms through
the shared neuron layer and the global terms. Terms of one (T, K) share one ``nn.Linear`` over
the concatenated sources (one bias per term).

Both papers characterize all such maps for their group, so for MLP weight spaces DWS and
NFN-HNP layers span the same maps; they differ here as in their code: DWS pools with max,
drops features between layers, its head is ``baseline_layers`` linear maps (1 in its MNIST
trainer) and it reads MLPs only; NFN pools with mean, drops features in its head only and
reads the Small CNN Zoo too.
Not reproduced: NFN's Fourier-feature input encoding for INRs and DWS's set layers and batch
norm (docs in README, "The model library").
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from scalegmn.errors import ConfigError
from scalegmn.models.baselines import deep_mlp
from scalegmn.nn.input_scale import LayerScale
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import NetworkSpec

#: The weight-space kinds this module builds.
KINDS = ("dws", "nfn_np", "nfn_hnp")


def permuted_layers(kind: str, spec: NetworkSpec) -> frozenset[int]:
    """The neuron layers ``k`` (0 = inputs .. L = outputs) the kind's group permutes."""
    if kind == "nfn_np":
        return frozenset(range(spec.n_layers + 1))
    return frozenset(range(1, spec.n_layers))


class BlockLayout:
    """How each block of a weight space is held: ``(B, *dims, channels * fold)``.

    Blocks in order ``W_0, b_0, W_1, b_1, ...``. ``labels[i]`` names the neuron layers of block
    i's permuted dims in order; ``fold[i]`` is the number of scalars per channel folded into its
    last dim (kernel taps times the sizes of fixed neuron layers).
    """

    def __init__(self, spec: NetworkSpec, permuted: frozenset[int]) -> None:
        self.spec, self.permuted = spec, permuted
        self.labels: list[tuple[int, ...]] = []
        self.fold: list[int] = []
        self.sizes = spec.layout
        for layer in range(spec.n_layers):
            kernel = math.prod(spec.weight_shape(layer)[2:])
            rows, cols = layer + 1, layer
            for idx in ((rows, cols), (rows,)):
                perm = tuple(k for k in idx if k in permuted)
                fixed = math.prod(spec.layout[k] for k in idx if k not in permuted)
                self.labels.append(perm)
                self.fold.append(fixed * (kernel if len(idx) == 2 else 1))

    @property
    def n_blocks(self) -> int:
        """``2 L``: a weight and a bias block per layer."""
        return len(self.labels)

    def to_blocks(self, weights, biases) -> list[torch.Tensor]:
        """The raw ``(B, out, in[, kh, kw])`` / ``(B, out)`` tensors as blocks of one channel."""
        out = []
        for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
            for raw, idx in ((w, (layer + 1, layer)), (b, (layer + 1,))):
                perm_axes = [1 + i for i, k in enumerate(idx) if k in self.permuted]
                rest = [a for a in range(1, raw.dim()) if a not in perm_axes]
                t = raw.permute(0, *perm_axes, *rest)  # fixed neurons and kernel taps last
                out.append(t.reshape(raw.shape[0], *(raw.shape[a] for a in perm_axes), -1))
        return out

    def from_blocks(self, blocks: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Inverse of :meth:`to_blocks` for blocks of one channel: per-layer ``(ΔW_l, Δb_l)``."""
        weights, biases = [], []
        for layer in range(self.spec.n_layers):
            rows, cols = layer + 1, layer
            for j, (shape, idx, dest) in enumerate(((self.spec.weight_shape(layer), (rows, cols), weights),
                                                    (self.spec.bias_shape(layer), (rows,), biases))):
                t = blocks[2 * layer + j]
                perm_axes = [1 + i for i, k in enumerate(idx) if k in self.permuted]
                rest = [a for a in range(1, len(shape) + 1) if a not in perm_axes]
                order = [0, *perm_axes, *rest]
                full = (t.shape[0], *shape)
                t = t.reshape(*(full[a] for a in order))
                dest.append(t.permute(*[order.index(a) for a in range(len(order))]))
        return weights, biases


def _pool(t: torch.Tensor, labels: tuple[int, ...], keep: tuple[int, ...], reduction: str) -> torch.Tensor:
    dims = tuple(1 + i for i, k in enumerate(labels) if k not in keep)
    if not dims:
        return t
    return t.amax(dim=dims) if reduction == "max" else t.mean(dim=dims)


class EquivariantLayer(nn.Module):
    """Every linear map between the blocks of :class:`BlockLayout` that commutes with the
    permutations of its permuted neuron layers (module docstring), from ``c_in`` to ``c_out``
    channels per folded scalar."""

    def __init__(self, layout: BlockLayout, c_in: int, c_out: int, reduction: str) -> None:
        super().__init__()
        self.layout, self.reduction = layout, reduction
        self.c_in = [c_in * f for f in layout.fold]
        self.c_out = [c_out * f for f in layout.fold]
        # terms[t] = [(kept labels K in T's order, source blocks)], one Linear each
        self.terms: list[list[tuple[tuple[int, ...], tuple[int, ...]]]] = []
        self.maps = nn.ModuleList()
        for t, lt in enumerate(layout.labels):
            per_target = []
            for r in range(len(lt) + 1):
                for keep in itertools.combinations(lt, r):
                    sources = tuple(s for s, ls in enumerate(layout.labels) if set(keep) <= set(ls))
                    d_in = sum(self.c_in[s] for s in sources)
                    per_target.append((keep, sources))
                    self.maps.append(nn.Linear(d_in, self.c_out[t]))
            self.terms.append(per_target)
            # He init over the target's terms together: the ReLU features keep their scale
            # through the layers (nn.Linear's default shrinks it ~2.4x per layer)
            for m in self.maps[len(self.maps) - len(per_target):]:
                bound = math.sqrt(6 / (m.in_features * len(per_target)))
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        """``blocks`` with ``c_in`` channels -> the same blocks with ``c_out`` channels."""
        labels = self.layout.labels
        pooled: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}
        out, i = [], 0
        for t, lt in enumerate(labels):
            acc = None
            for keep, sources in self.terms[t]:
                parts = []
                for s in sources:
                    key = (s, keep)
                    if key not in pooled:
                        p = _pool(blocks[s], labels[s], keep, self.reduction)
                        kept = [k for k in labels[s] if k in keep]
                        if kept != list(keep):  # two kept dims in the other order
                            p = p.transpose(1, 2)
                        pooled[key] = p
                    parts.append(pooled[key])
                y = self.maps[i](torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])
                i += 1
                # broadcast over T's dims not kept
                shape = [y.shape[0]] + [self.layout.sizes[k] if k in keep else 1 for k in lt] + [y.shape[-1]]
                y = y.reshape(shape)
                acc = y if acc is None else acc + y
            out.append(acc)
        return out


class WeightSpaceModel(nn.Module):
    """NFN-NP, NFN-HNP or DWS: equivariant layers with ReLU, then an invariant pool and an MLP
    head, or (editing) a last equivariant layer to one channel: ``(ΔW_l, Δb_l)`` per layer.

    Shapes:
        ``batch`` of ``B`` networks -> ``(B, n_outputs)``; for editing per layer
        ``(ΔW_l (B, *W_l.shape), Δb_l (B, *b_l.shape))``.
    """

    def __init__(self, kind: str, spec: NetworkSpec, *, task: str, n_outputs: int, d_hid: int,
                 n_layers: int, head_hid: int, head_layers: int, dropout: float,
                 out_scale: float) -> None:
        super().__init__()
        self.kind, self.spec = kind, spec
        self.editing = task == "editing"
        self.reduction = "max" if kind == "dws" else "mean"
        self.layout = BlockLayout(spec, permuted_layers(kind, spec))
        chans = [1] + [d_hid] * n_layers
        if self.editing:
            chans.append(1)
        self.layers = nn.ModuleList(EquivariantLayer(self.layout, a, b, self.reduction)
                                    for a, b in itertools.pairwise(chans))
        # DWS drops features between its layers and before its head; NFN in its head only
        between = dropout if kind == "dws" else 0.0
        self.dropout = nn.Dropout(between) if between > 0 else nn.Identity()
        self.input_scale = LayerScale(spec.n_layers)
        if self.editing:
            # per-layer gains of the edit, as ScaleGMN's editing head (alpha_l, beta_l)
            self.out_gain = nn.Parameter(torch.full((2 * spec.n_layers,), float(out_scale)))
        else:
            d_pool = d_hid * sum(self.layout.fold)
            # The pooled ReLU features are all positive: without centring, Adam moves every head
            # weight the same way and the output runs away in a few steps (sigmoid saturates on
            # the CNN zoo at lr 3e-3). A LayerNorm of the invariant vector keeps it invariant.
            self.head = nn.Sequential(nn.LayerNorm(d_pool),
                                      deep_mlp(d_pool, n_outputs, head_hid, head_layers, dropout, nn.ReLU))

    def features(self, batch) -> list[torch.Tensor]:
        """The equivariant blocks after the last layer (ReLU applied unless editing)."""
        if not isinstance(batch, WeightBatch):
            raise ValueError(f"the {self.kind} baseline takes a WeightBatch (one architecture per batch)")
        if batch.net.spec.layout != self.spec.layout or batch.net.spec.layer_kinds != self.spec.layer_kinds:
            raise ValueError(f"the {self.kind} model was built for layout {self.spec.layout}, "
                             f"got networks of layout {batch.net.spec.layout}")
        net = self.input_scale(batch).net
        dtype = self.layers[0].maps[0].weight.dtype
        h = self.layout.to_blocks([w.to(dtype) for w in net.weights], [b.to(dtype) for b in net.biases])
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if not (self.editing and i == last):
                h = [self.dropout(torch.relu(t)) for t in h]
        return h

    def forward(self, batch):
        """``(B, n_outputs)``, or per-layer ``(ΔW, Δb)`` for editing."""
        h = self.features(batch)
        if self.editing:
            h = [t * g for t, g in zip(h, self.out_gain, strict=True)]
            return self.input_scale.unscale(*self.layout.from_blocks(h))
        pooled = [_pool(t, lab, (), self.reduction).reshape(t.shape[0], -1)
                  for t, lab in zip(h, self.layout.labels, strict=True)]
        return self.head(torch.cat(pooled, dim=-1))


def check_fits(kind: str, spec: NetworkSpec) -> None:
    """``ConfigError`` when the kind cannot read networks of ``spec``."""
    if kind == "dws" and spec.is_cnn:
        raise ConfigError("model.kind", "dws reads MLP weight spaces (INRs) only, as DWSNets; "
                                        "use nfn_hnp or nfn_np for CNN zoos")
    if spec.residual:
        raise ConfigError("model.kind", f"{kind} has no residual connections in its weight space; "
                                        "use scalegmn, gmn or statnn for zoos with residual connections")


def build_weight_space_model(config, spec: NetworkSpec, *, task: str, n_outputs: int) -> WeightSpaceModel:
    """The NFN or DWS model ``config.kind`` names, for networks of ``spec``."""
    check_fits(config.kind, spec)
    return WeightSpaceModel(
        config.kind, spec, task=task, n_outputs=n_outputs, d_hid=config.d_hid,
        n_layers=config.n_layers, head_hid=config.head_hid or config.d_hid,
        head_layers=config.baseline_layers, dropout=config.dropout, out_scale=config.out_scale,
    )
