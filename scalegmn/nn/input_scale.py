"""Per-layer input scaling: ``W_l / s_l`` and ``b_l / t_l`` with one positive constant per layer.

Raw weights differ in size by an order of magnitude from layer to layer (MNIST INRs: RMS
0.06, 0.02 and 0.12); a model with small inputs in one layer learns slowly from it. The
original code feeds raw weights (docs/model.md §4.6); ``input_scaling="rms"`` divides each
layer by its root mean square over the training split.

A positive constant per layer commutes with every symmetry the models respect: permutations
of hidden neurons, sign flips and positive per-neuron scales (``diag(q_l) W_l diag(q_{l-1})^-1``
times ``1/s_l`` is the same element applied to ``W_l / s_l``). So an invariant model stays
invariant and an equivariant one equivariant; the editing outputs are scaled back by
:meth:`LayerScale.unscale` into the units of the input. The constants are buffers: a
checkpoint carries them, and :func:`scalegmn.train.predict` applies the calibration of training.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network

MODES = ("none", "rms")


class LayerScale(nn.Module):
    """Divide the weights and biases of layer ``l`` by ``weight_scale[l]`` and ``bias_scale[l]``
    (ones until :meth:`calibrate`)."""

    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.register_buffer("weight_scale", torch.ones(n_layers, dtype=torch.float64))
        self.register_buffer("bias_scale", torch.ones(n_layers, dtype=torch.float64))
        self._identity: bool | None = True  # cached: checking the buffers syncs a GPU

    @property
    def is_identity(self) -> bool:
        """True while every scale is 1 (cached: reading the buffers would sync a GPU)."""
        if self._identity is None:
            self._identity = bool((self.weight_scale == 1).all() and (self.bias_scale == 1).all())
        return self._identity

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._identity = None

    @torch.no_grad()
    def calibrate(self, net: Network) -> None:
        """Set the constants to each layer's RMS over the networks of ``net`` (a stacked batch,
        e.g. the training split); an all-zero layer keeps the constant 1."""

        def rms(t: torch.Tensor) -> float:
            value = float(t.double().pow(2).mean().sqrt())
            return value if value > 0 else 1.0

        self.set_scales([rms(w) for w in net.weights], [rms(b) for b in net.biases])

    @torch.no_grad()
    def set_scales(self, weight_scale: list[float], bias_scale: list[float]) -> None:
        """Set the constants to given per-layer values (e.g. RMS computed block by block over a
        streamed split, :meth:`scalegmn.data.stream.StreamedSplit.layer_rms`)."""
        self.weight_scale.copy_(torch.tensor(weight_scale, dtype=torch.float64))
        self.bias_scale.copy_(torch.tensor(bias_scale, dtype=torch.float64))
        self._identity = None

    def forward(self, batch):
        """The batch with every layer divided by its constants (any other input, e.g. a PyG
        batch, only when the scaling is the identity)."""
        if self.is_identity:
            return batch
        if not isinstance(batch, WeightBatch):
            raise ValueError("a model with calibrated input scaling takes a WeightBatch "
                             "(one architecture per batch), not a mixed-layout PyG batch")
        net = batch.net
        weights = tuple(w / s.to(w.dtype) for w, s in zip(net.weights, self.weight_scale, strict=True))
        biases = tuple(b / s.to(b.dtype) for b, s in zip(net.biases, self.bias_scale, strict=True))
        return replace(batch, net=net.replace(weights=weights, biases=biases))

    def unscale(self, weights, biases) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Per-layer outputs in scaled units (an edit ΔW, Δb) back in the input's units."""
        return (
            tuple(w * s.to(w.dtype) for w, s in zip(weights, self.weight_scale, strict=True)),
            tuple(b * s.to(b.dtype) for b, s in zip(biases, self.bias_scale, strict=True)),
        )
