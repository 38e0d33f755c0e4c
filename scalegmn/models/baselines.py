"""Baselines that ignore the graph structure (docs/model.md §6 tables).

- ``MLPBaseline``: an MLP on all parameters flattened (``Network.flat()``). Neither permutation
  nor scale invariant. For editing it outputs a flat ΔW/Δb, reshaped per layer.
- ``StatNN`` (Unterthiner et al. 2020): per layer, statistics of the weights and of the biases
  (mean, variance and the 0, 25, 50, 75, 100 % quantiles) -> an MLP. Permutation invariant,
  not scale invariant; invariant tasks only. On zoos that mix architectures (a
  :class:`~scalegmn.weightspace.batch.MixedBatch`, CNN Wild Park) the statistics fill layer slots:
  conv layer k in slot k, the linear head in the last slot, absent layers zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scalegmn.errors import ConfigError
from scalegmn.nn.input_scale import LayerScale
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.network import NetworkSpec

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def deep_mlp(d_in: int, d_out: int, d_hid: int, n_layers: int, dropout: float,
             activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """``n_layers`` Linear layers ``d_in -> d_hid -> ... -> d_out``, each hidden one followed by
    ``activation`` and dropout (the baselines' MLPs and heads)."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(max(n_layers - 1, 0)):
        layers += [nn.Linear(d, d_hid), activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = d_hid
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def _weights_of(batch) -> WeightBatch:
    if not isinstance(batch, WeightBatch):
        raise ValueError("the MLP and StatNN baselines take a WeightBatch (one architecture per batch)")
    return batch


class MLPBaseline(nn.Module):
    """An MLP on all parameters flattened; neither permutation nor scale invariant.

    Shapes:
        ``batch`` of ``B`` networks with ``P`` parameters -> ``(B, n_outputs)``; for editing, per
        layer ``(ΔW_l (B, *W_l.shape), Δb_l (B, *b_l.shape))`` from a flat ``(B, P)`` output.
    """

    def __init__(self, spec: NetworkSpec, n_outputs: int, *, d_hid: int, n_layers: int,
                 dropout: float, editing: bool) -> None:
        super().__init__()
        self.spec, self.editing = spec, editing
        d_out = spec.num_params if editing else n_outputs
        self.mlp = deep_mlp(spec.num_params, d_out, d_hid, n_layers, dropout)
        self.input_scale = LayerScale(spec.n_layers)

    def forward(self, batch):
        """Predict from the flattened, layer-scaled weights (editing: unscale the ΔW/Δb)."""
        net = self.input_scale(_weights_of(batch)).net
        out = self.mlp(net.flat().to(self.mlp[0].weight.dtype))
        if not self.editing:
            return out
        weights, biases, at = [], [], 0
        for i in range(self.spec.n_layers):
            for shape, dest in ((self.spec.weight_shape(i), weights), (self.spec.bias_shape(i), biases)):
                n = math.prod(shape)
                dest.append(out[:, at : at + n].reshape(-1, *shape))
                at += n
        return self.input_scale.unscale(weights, biases)


def layer_statistics(batch: WeightBatch) -> torch.Tensor:
    """``(B, 14 L)``: mean, variance and 5 quantiles of each layer's weights and biases."""
    feats = []
    for w, b in zip(batch.net.weights, batch.net.biases, strict=True):
        for t in (w, b):
            flat = t.reshape(t.shape[0], -1)
            q = torch.quantile(flat, torch.tensor(QUANTILES, dtype=flat.dtype, device=flat.device), dim=1).T
            var = flat.var(dim=1, unbiased=False, keepdim=True)
            feats += [flat.mean(dim=1, keepdim=True), var, q]
    return torch.cat(feats, dim=1)


def slot_statistics(batch: MixedBatch, n_slots: int) -> torch.Tensor:
    """``(B, 14 n_slots)`` for networks of several architectures, in batch row order: a
    network's leading conv (or hidden) layers fill the first slots, its last layer the last
    slot, and slots it has no layer for are zero."""
    rows = []
    for group in batch.groups:
        n_layers = group.spec.n_layers
        if n_layers > n_slots:
            raise ValueError(f"a network has {n_layers} layers but StatNN was built for {n_slots} "
                             "layer slots; build it for the zoo's deepest architecture")
        stats = layer_statistics(WeightBatch(group)).reshape(-1, n_layers, 14)
        padded = stats.new_zeros(stats.shape[0], n_slots, 14)
        padded[:, : n_layers - 1] = stats[:, :-1]
        padded[:, -1] = stats[:, -1]
        rows.append(padded.reshape(stats.shape[0], -1))
    return torch.cat(rows)


class StatNN(nn.Module):
    """StatNN (Unterthiner et al. 2020): an MLP on per-layer weight and bias statistics
    (:func:`layer_statistics`); permutation invariant, not scale invariant.

    Shapes:
        ``batch`` of ``B`` networks with ``L`` layers -> stats ``(B, 14 L)`` -> ``(B, n_outputs)``;
        a :class:`MixedBatch` -> slot statistics ``(B, 14 L)`` with ``L`` the deepest
        architecture's layer count (``spec``'s), :func:`slot_statistics`.
    """

    def __init__(self, spec: NetworkSpec, n_outputs: int, *, d_hid: int, n_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.n_slots = spec.n_layers
        self.mlp = deep_mlp(14 * spec.n_layers, n_outputs, d_hid, n_layers, dropout)
        self.input_scale = LayerScale(spec.n_layers)

    def forward(self, batch):
        """Apply the MLP to the statistics of the layer-scaled weights (of the raw weights for
        a mixed batch: per-layer scales do not align across architectures)."""
        if isinstance(batch, MixedBatch):
            stats = slot_statistics(batch, self.n_slots)
        else:
            stats = layer_statistics(self.input_scale(_weights_of(batch)))
        return self.mlp(stats.to(self.mlp[0].weight.dtype))


def build_baseline(config, spec: NetworkSpec, *, task: str, n_outputs: int) -> nn.Module:
    """The baseline named by ``config.kind`` for ``spec``; ``ConfigError`` for StatNN on editing."""
    kw = dict(d_hid=config.d_hid, n_layers=config.baseline_layers, dropout=config.dropout)
    if config.kind == "mlp":
        return MLPBaseline(spec, n_outputs, editing=task == "editing", **kw)
    if task == "editing":
        raise ConfigError("model.kind", "statnn is invariant and cannot edit networks; use mlp or scalegmn")
    return StatNN(spec, n_outputs, **kw)
