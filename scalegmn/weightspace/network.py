"""One in-memory representation of a neural network, independent of any file format.

A network is an architecture (:class:`NetworkSpec`) plus per-layer weights and biases in
PyTorch order: a linear layer's weight is ``(out, in)``, a conv kernel ``(out, in, kh, kw)``.
Every tensor may carry the same leading batch dimensions, so a whole zoo of one architecture
is one :class:`Network` whose ``weights[l]`` has shape ``(B, out, in, ...)``.

Every file format reads into this class and writes from it; the graph features, the symmetry
transforms, canonicalization and the forward passes all take it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

ACTIVATIONS = ("sine", "relu", "tanh", "identity", "leaky_relu", "gelu", "sigmoid")
SCALE_KINDS = ("sign", "positive", "none")  # values of scale_kind
LAYER_KINDS = ("linear", "conv")
GRIDS = ("xy", "ij")


def scale_kind(activation: str) -> str:
    """The scaling group an activation respects, the one answer to "is this activation odd?".

    ``"sign"`` for odd activations (tanh, sine: ``σ(-z) = -σ(z)``, so ``q ∈ {±1}``),
    ``"positive"`` for positively homogeneous ones (ReLU, leaky ReLU, identity:
    ``σ(q z) = q σ(z)`` for ``q > 0``) and ``"none"`` for the rest (GELU, sigmoid), whose
    neurons carry only the permutation symmetry. See :mod:`scalegmn.weightspace.symmetry`.
    """
    if activation in ("sine", "tanh"):
        return "sign"
    if activation in ("relu", "leaky_relu", "identity"):
        return "positive"
    if activation in ("gelu", "sigmoid"):
        return "none"
    raise ValueError(f"unknown activation {activation!r}")


def is_odd(activation: str) -> bool:
    """True where the sign group acts (``scale_kind(activation) == "sign"``)."""
    return scale_kind(activation) == "sign"


@dataclass(frozen=True)
class NetworkSpec:
    """Architecture of a feed-forward network (MLP, SIREN or small CNN).

    Attributes:
        layout: neurons (MLP) or channels (CNN) per layer, inputs first: ``(n0, ..., nL)``.
        activations: activation after each of the L layers (one of :data:`ACTIVATIONS`); the
            last is normally ``"identity"``. Layers may differ (CNN Wild Park).
        layer_kinds: ``"linear"`` or ``"conv"`` per layer. A linear layer that follows a conv
            layer is preceded by global average pooling (the Small CNN Zoo).
        kernel_size: spatial size ``(kh, kw)`` of every conv kernel; ``None`` for MLPs.
        omega0: frequency of every sine layer, ``sin(omega0 * (W x + b))``.
        output_offset: constant added to the network output (DWS SIRENs add 0.5).
        conv_stride: stride of every conv layer.
        conv_padding: zero padding of every conv layer.
        grid: coordinate convention when an INR is rendered: ``"xy"`` (DWS: pixel (r, c) is
            the input (x=lin[c], y=lin[r])) or ``"ij"`` (NFN: input (lin[r], lin[c])).
        residual: per layer, the index ``j`` of an earlier layer whose activated output is
            added to this layer's pre-activation on their first ``min(n_{j+1}, n_{i+1})``
            channels, or -1 for none (CNN Wild Park's rule, docs/datasets.md §5.2). Empty means
            no residual connections. Needs conv layers that keep the spatial size.
    """

    layout: tuple[int, ...]
    activations: tuple[str, ...]
    layer_kinds: tuple[str, ...] = ()
    kernel_size: tuple[int, int] | None = None
    omega0: float = 30.0
    output_offset: float = 0.0
    conv_stride: int = 1
    conv_padding: int = 0
    grid: str = "xy"
    residual: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", tuple(int(n) for n in self.layout))
        object.__setattr__(self, "activations", tuple(self.activations))
        kinds = tuple(self.layer_kinds) or ("linear",) * (len(self.layout) - 1)
        object.__setattr__(self, "layer_kinds", kinds)
        if self.kernel_size is not None:
            object.__setattr__(self, "kernel_size", tuple(int(k) for k in self.kernel_size))
        if len(self.layout) < 2 or any(n < 1 for n in self.layout):
            raise ValueError(f"layout {self.layout}: need at least two layers of size >= 1")
        n_layers = len(self.layout) - 1
        if len(self.activations) != n_layers or len(kinds) != n_layers:
            raise ValueError(
                f"layout {self.layout} has {n_layers} layers but {len(self.activations)} "
                f"activations and {len(kinds)} layer kinds; give one per layer"
            )
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        if bad:
            raise ValueError(f"unknown activation {bad[0]!r}; use one of {ACTIVATIONS}")
        bad = [k for k in kinds if k not in LAYER_KINDS]
        if bad:
            raise ValueError(f"unknown layer kind {bad[0]!r}; use one of {LAYER_KINDS}")
        if "conv" in kinds and self.kernel_size is None:
            raise ValueError("a network with conv layers needs kernel_size=(kh, kw)")
        if any(a == "conv" and b == "linear" for a, b in zip(kinds[1:], kinds, strict=False)):
            raise ValueError("conv layers must come before linear layers")
        if self.grid not in GRIDS:
            raise ValueError(f"grid {self.grid!r}: use one of {GRIDS}")
        residual = tuple(int(j) for j in self.residual)
        object.__setattr__(self, "residual", () if all(j < 0 for j in residual) else residual)
        self._check_residual()

    def _check_residual(self) -> None:
        if not self.residual:
            return
        if len(self.residual) != self.n_layers:
            raise ValueError(f"residual {self.residual}: give one entry per layer ({self.n_layers})")
        for i, j in enumerate(self.residual):
            if j < 0:
                continue
            if j >= i - 1:
                raise ValueError(f"residual[{i}] = {j}: a residual source must be a layer before {i - 1}")
            if self.layer_kinds[i] != "conv" or self.layer_kinds[j] != "conv":
                raise ValueError(f"residual[{i}] = {j}: residual connections join conv layers only")
        kh, kw = self.kernel_size
        if self.conv_stride != 1 or 2 * self.conv_padding != kh - 1 or kh != kw:
            raise ValueError(
                "residual connections need conv layers that keep the spatial size: stride 1, "
                f"a square odd kernel and padding k // 2 (got stride {self.conv_stride}, kernel "
                f"{self.kernel_size}, padding {self.conv_padding})"
            )

    def residual_pairs(self) -> tuple[tuple[int, int, int], ...]:
        """``(source layer j, target layer i, tied channels m)`` per residual connection."""
        return tuple(
            (j, i, min(self.layout[j + 1], self.layout[i + 1]))
            for i, j in enumerate(self.residual)
            if j >= 0
        )

    @property
    def n_layers(self) -> int:
        """Number of layers L (weight matrices or conv kernels)."""
        return len(self.layout) - 1

    @property
    def n_nodes(self) -> int:
        """Number of neurons (channels), inputs included: the graph's nodes."""
        return sum(self.layout)

    @property
    def n_edges(self) -> int:
        """Number of neuron-to-neuron connections: the graph's edges."""
        return sum(a * b for a, b in zip(self.layout[:-1], self.layout[1:], strict=True))

    @property
    def is_cnn(self) -> bool:
        """Whether any layer is a conv layer."""
        return "conv" in self.layer_kinds

    @property
    def is_uniform(self) -> bool:
        """Whether every hidden layer has one activation and there is no residual connection:
        the architectures whose batches the fixed-layout fast paths take."""
        return len(set(self.activations[:-1])) <= 1 and not self.residual

    @property
    def hidden_activation(self) -> str:
        """The activation of the hidden layers (all but the last); raises if they differ."""
        acts = set(self.activations[:-1]) or {self.activations[-1]}
        if len(acts) != 1:
            raise ValueError(f"hidden layers mix activations {sorted(acts)}")
        return acts.pop()

    def weight_shape(self, layer: int) -> tuple[int, ...]:
        """Shape of layer ``layer``'s weight: ``(out, in)`` or ``(out, in, kh, kw)``."""
        out, inp = self.layout[layer + 1], self.layout[layer]
        if self.layer_kinds[layer] == "conv":
            return (out, inp, *self.kernel_size)
        return (out, inp)

    def bias_shape(self, layer: int) -> tuple[int, ...]:
        """Shape of layer ``layer``'s bias: ``(out,)``."""
        return (self.layout[layer + 1],)

    @property
    def num_params(self) -> int:
        """Number of scalar parameters (every weight and bias)."""
        return sum(
            math.prod(self.weight_shape(i)) + math.prod(self.bias_shape(i))
            for i in range(self.n_layers)
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-serialisable dict (tuples become lists; no ``residual`` key when
        there is none, so keys written before residual connections existed stay the same)."""
        d = dataclasses.asdict(self)
        if not self.residual:
            del d["residual"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkSpec:
        """The spec that :meth:`to_dict` wrote."""
        return cls(**d)

    def key(self) -> str:
        """A stable string that identifies the architecture (JSON, sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_activation(self, hidden: str) -> NetworkSpec:
        """The same architecture with every hidden layer's activation replaced."""
        acts = (hidden,) * (self.n_layers - 1) + (self.activations[-1],)
        return dataclasses.replace(self, activations=acts)


def dws_siren_spec() -> NetworkSpec:
    """MNIST/FMNIST INRs (DWS format): 2-32-32-1 SIREN, omega0 = 30, output + 0.5, 'xy' grid."""
    return NetworkSpec((2, 32, 32, 1), ("sine", "sine", "identity"), output_offset=0.5, grid="xy")


def nfn_siren_spec() -> NetworkSpec:
    """CIFAR-10 INRs (NFN format): 2-32-32-3 SIREN, omega0 = 30, no offset, 'ij' grid."""
    return NetworkSpec((2, 32, 32, 3), ("sine", "sine", "identity"), grid="ij")


def cnn_zoo_spec(activation: str) -> NetworkSpec:
    """Small CNN Zoo: 3 conv 3x3 stride 2 (no padding), global average pooling, dense 16->10."""
    return NetworkSpec(
        (1, 16, 16, 16, 10),
        (activation, activation, activation, "identity"),
        layer_kinds=("conv", "conv", "conv", "linear"),
        kernel_size=(3, 3),
        conv_stride=2,
        conv_padding=0,
    )


@dataclass(frozen=True)
class Network:
    """Weights, biases and metadata of one network, or of a batch sharing one architecture.

    Attributes:
        spec: the architecture.
        weights: per layer, ``(*batch, out, in)`` or ``(*batch, out, in, kh, kw)``.
        biases: per layer, ``(*batch, out)``.
        source: where it came from (a file path, or ``file#row``).
        label: class label (INR classification), or ``None``.
        target: regression target such as test accuracy (generalization prediction), or ``None``.
        meta: any further per-network metadata (JSON-serialisable).
    """

    spec: NetworkSpec
    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    source: str = ""
    label: int | None = None
    target: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(self.weights))
        object.__setattr__(self, "biases", tuple(self.biases))
        self.validate()

    @property
    def batch_shape(self) -> torch.Size:
        """The leading batch dimensions shared by every tensor (``()`` for one network)."""
        return self.biases[0].shape[:-1]

    def validate(self) -> None:
        """Raise ``ValueError`` naming the source and tensor if any shape is wrong."""
        spec, where = self.spec, self.source or "network"
        if len(self.weights) != spec.n_layers or len(self.biases) != spec.n_layers:
            raise ValueError(
                f"{where}: expected {spec.n_layers} weight and bias tensors for layout "
                f"{spec.layout}, got {len(self.weights)} and {len(self.biases)}"
            )
        batch = self.batch_shape
        for i in range(spec.n_layers):
            for name, t, shape in (
                ("weight", self.weights[i], spec.weight_shape(i)),
                ("bias", self.biases[i], spec.bias_shape(i)),
            ):
                if tuple(t.shape) != (*batch, *shape):
                    raise ValueError(
                        f"{where}: layer {i} {name} has shape {tuple(t.shape)}, "
                        f"expected {(*batch, *shape)} for layout {spec.layout}"
                    )

    def params(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """``(weights, biases)``, each a tuple with one tensor per layer."""
        return self.weights, self.biases

    def replace(self, **changes: Any) -> Network:
        """A copy with the given fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def to(self, dtype: torch.dtype | None = None, device: Any = None, non_blocking: bool = False) -> Network:
        """A copy with every tensor moved to ``device`` and/or cast to ``dtype`` (``non_blocking``:
        host-to-GPU copies do not wait, as for a training batch)."""
        return self.replace(
            weights=tuple(w.to(device=device, dtype=dtype, non_blocking=non_blocking) for w in self.weights),
            biases=tuple(b.to(device=device, dtype=dtype, non_blocking=non_blocking) for b in self.biases),
        )

    def flat(self) -> torch.Tensor:
        """All parameters in layer order, weight then bias: ``(*batch, num_params)``."""
        batch = self.batch_shape
        parts = []
        for w, b in zip(self.weights, self.biases, strict=True):
            parts += [w.reshape(*batch, -1), b.reshape(*batch, -1)]
        return torch.cat(parts, dim=-1)

    def non_finite(self) -> str | None:
        """Name of the first tensor holding NaN or Inf, or ``None`` if all are finite."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if not torch.isfinite(w).all():
                return f"layer {i} weight"
            if not torch.isfinite(b).all():
                return f"layer {i} bias"
        return None


def stack(networks: Sequence[Network]) -> Network:
    """Stack single networks of one architecture into a batch (metadata goes to ``meta``)."""
    if not networks:
        raise ValueError("stack() needs at least one network")
    spec = networks[0].spec
    for n in networks:
        if n.spec != spec:
            raise ValueError(f"{n.source}: architecture differs from {networks[0].source}")
    return Network(
        spec,
        tuple(torch.stack([n.weights[i] for n in networks]) for i in range(spec.n_layers)),
        tuple(torch.stack([n.biases[i] for n in networks]) for i in range(spec.n_layers)),
        meta={
            "sources": [n.source for n in networks],
            "labels": [n.label for n in networks],
            "targets": [n.target for n in networks],
        },
    )


def unstack(batch: Network) -> list[Network]:
    """Inverse of :func:`stack` for a batch with one leading dimension."""
    if len(batch.batch_shape) != 1:
        raise ValueError(f"unstack() needs one batch dimension, got {tuple(batch.batch_shape)}")
    n = batch.batch_shape[0]
    sources = batch.meta.get("sources", [""] * n)
    labels = batch.meta.get("labels", [None] * n)
    targets = batch.meta.get("targets", [None] * n)
    return [
        Network(
            batch.spec,
            tuple(w[k] for w in batch.weights),
            tuple(b[k] for b in batch.biases),
            source=sources[k],
            label=labels[k],
            target=targets[k],
        )
        for k in range(n)
    ]
