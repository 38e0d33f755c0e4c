"""Model and optimiser configurations, and the 20 original experiment presets by name.

Every preset reproduces one YAML of the original repository (scalegmn-spec §3.2) after the
original's silent overrides (every MLP has one hidden layer of width ``d_hid``). Differences
from the original, on purpose:

- ``backward_edges="auto"``: bidirectional models with ReLU/hetero symmetry invert the backward
  edge state (``ẽ = e / ‖e‖²``) so that backward messages are scale-equivariant (the
  original is not, spec §2.6). No parameters change. Near-zero edge states give large ẽ
  (``‖ẽ‖ = 1/‖e‖``); ``backward_eps > 0`` bounds it at the price of exactness for those edges,
  ``backward_edges="shared"`` restores the original behaviour.
- ``full_graph`` readouts have fewer parameters than the original's count: the original builds
  an MLP d -> d -> d in its readout that it never calls (spec §2.7, ``UNUSED_ORIGINAL_PARAMS``).
- Hetero models read positional features in ScaleInv (the original drops them, §2.10); no
  preset enables that, so counts are unchanged.
- Edge types follow the intended rule (§1.4).
- ``svhn/scalegmn_relu_bidir`` uses its YAML with the broken ``input_layers`` line removed;
  ``svhn/scalegmn_tanh`` had no batch size: 64 is used (the value of ``svhn/scalegmn_relu_bidir``).

``scalegmn presets`` prints each preset's parameter count beside the original's.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from scalegmn.errors import ConfigError

CHOICES = {
    "kind": ("scalegmn", "gmn", "mlp", "statnn"),
    "direction": ("forward", "bidirectional"),
    "symmetry": ("sign", "scale", "hetero", "permutation"),
    "tau": ("abs", "sym"),
    "readout": ("last_layer", "full_graph"),
    "backward_edges": ("auto", "inverse", "shared"),
    "input_scaling": ("none", "rms"),
}


def _flatten(mapping: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check_value(section: str, f: dataclasses.Field, value: Any) -> Any:
    key = f"{section}.{f.name}"
    hint = f.type if not isinstance(f.type, str) else eval(f.type, {}, {})  # noqa: S307
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(key, "must not be empty")
    if f.name in CHOICES and value not in CHOICES[f.name]:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(CHOICES[f.name])}")
    if bool in allowed:
        if not isinstance(value, bool):
            raise ConfigError(key, f"{value!r} must be true or false")
        return value
    if int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    if float in allowed and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if str in allowed and isinstance(value, str):
        return value
    names = " or ".join(t.__name__ for t in allowed if t is not type(None))
    raise ConfigError(key, f"{value!r} must be {names}")


class _Overridable:
    _section = ""

    def override(self, mapping: Mapping[str, Any]):
        """A copy with the given keys replaced; dotted (``"a.b"``) or nested keys; a leading
        section name (``"model."``/``"optim."``) is accepted. Unknown keys or bad types raise
        :class:`~scalegmn.errors.ConfigError`."""
        known = {f.name: f for f in fields(self)}
        changes = {}
        for key, value in _flatten(mapping).items():
            name = key.removeprefix(f"{self._section}.")
            if name not in known:
                raise ConfigError(
                    f"{self._section}.{name}", f"unknown key; known keys: {', '.join(sorted(known))}"
                )
            changes[name] = _check_value(self._section, known[name], value)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelConfig(_Overridable):
    """Every model option (scalegmn-spec §2, §3). See the module docstring for the differences.

    kind: scalegmn | gmn (permutation only) | mlp | statnn (baselines).
    direction: forward | bidirectional (ScaleGMN-B).
    symmetry: sign (sine/tanh) | scale (ReLU) | hetero (mixed, per graph) | permutation.
    tau: invariant map for the sign group: abs (|x|) or sym (ρ(x) + ρ(-x)).
    readout: last_layer (output neurons) | full_graph (pooled hidden + I/O neurons).
    node_pe / edge_pe: learned type embeddings; sum_on_io: add (not multiply) on I/O nodes.
    pe_msg / pe_upd: append the node PE to message / update inputs.
    mlp_on_io: input/output nodes use a plain MLP instead of ``Γx ⊙ φ``.
    num_mlps: 2 (one I/O MLP) or 3 (separate input and output MLPs).
    dropout: after every GNN layer; dropout_all: also inside every MLP.
    gnn_skip: linear skip connection around each layer.
    input_node_value: node feature of input neurons (1 for INRs, 0 for CNNs in the original).
    out_scale: initial α_l, β_l of the editing head.
    backward_edges: auto (inverse for scale/hetero, shared for sign) | inverse | shared.
    backward_eps: clamp ‖e‖² ≥ ε in the inverse backward edge state (0: exact, see inverse_edge).
    baseline_layers: depth of the MLP / StatNN baselines (hidden width d_hid).
    checkpoint: recompute each layer's per-edge activations in backward (activation
        checkpointing): about a third more compute, a fraction of the training memory.
    checkpoint_chunk: with checkpointing, a WeightBatch runs in chunks of this many graphs
        (bounds the activations recomputed at once; the result is the same).
    lean_autograd: lean autograd for training: the per-edge gated blocks keep only their
        inputs and one pre-activation for backward and rebuild the rest in cache-sized row
        chunks (scalegmn.nn.lean): same results, about a third of plain autograd's memory,
        and faster than plain autograd on CPU despite the recompute (measured in the report
        of benchmarks/model_throughput.py --modes auto plain checkpoint).
    input_scaling: none (raw weights, as the original) | rms: divide each layer's weights and
        biases by their RMS over the training split (scalegmn.nn.input_scale; keeps every
        symmetry, calibrated by the training job, carried by the checkpoint).
    lean_min_mb: use lean autograd only for batches where plain autograd would keep more than
        this many MB of per-edge activations (n_layers x 18 x edges x d_hid x bytes); 0: always.
    """

    _section = "model"

    kind: str = "scalegmn"
    direction: str = "forward"
    symmetry: str = "sign"
    n_layers: int = 4
    d_hid: int = 128
    tau: str = "abs"
    readout: str = "last_layer"
    node_pe: bool = True
    edge_pe: bool = False
    sum_on_io: bool = True
    pe_msg: bool = False
    pe_upd: bool = False
    mlp_on_io: bool = False
    num_mlps: int = 2
    dropout: float = 0.0
    dropout_all: bool = False
    layer_norm: bool = True
    gnn_skip: bool = False
    input_node_value: float = 1.0
    out_scale: float = 0.01
    backward_edges: str = "auto"
    backward_eps: float = 0.0
    baseline_layers: int = 3
    checkpoint: bool = False
    checkpoint_chunk: int = 32
    lean_autograd: bool = True
    lean_min_mb: float = 0.0
    input_scaling: str = "none"

    def __post_init__(self) -> None:
        if self.n_layers < 1:
            raise ConfigError("model.n_layers", f"{self.n_layers} must be at least 1")
        if self.d_hid < 1:
            raise ConfigError("model.d_hid", f"{self.d_hid} must be at least 1")
        if self.num_mlps not in (2, 3):
            raise ConfigError("model.num_mlps", f"{self.num_mlps} must be 2 or 3")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout", f"{self.dropout} must be in [0, 1)")
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"model.{name}", f"{getattr(self, name)!r} is not one of {', '.join(choices)}")


@dataclass(frozen=True)
class OptimConfig(_Overridable):
    """AdamW with linear warm-up, gradient clipping; length in epochs or steps."""

    _section = "optim"

    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    epochs: int | None = 200
    max_steps: int | None = None
    eval_every_steps: int | None = None
    clip_grad_norm: float = 10.0
    warmup_steps: int = 1000
    patience: int | None = None
    # Accumulate gradients over micro-batches of this size: the same step, a micro-batch's memory.
    micro_batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ConfigError("optim.micro_batch_size", f"{self.micro_batch_size} must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("optim.batch_size", f"{self.batch_size} must be at least 1")
        if self.epochs is None and self.max_steps is None:
            raise ConfigError("optim.epochs", "give epochs or max_steps")
        for name in ("epochs", "max_steps", "eval_every_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"optim.{name}", f"{value} must be at least 1 (or null)")
        for name in ("warmup_steps", "patience"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"optim.{name}", f"{value} must be 0 or more")
        for name in ("lr", "weight_decay", "clip_grad_norm"):
            value = getattr(self, name)
            if not 0.0 <= value < float("inf"):  # also NaN
                raise ConfigError(f"optim.{name}", f"{value} must be a finite number >= 0")


@dataclass(frozen=True)
class Preset:
    name: str
    task: str  # classification | generalization | editing
    model: ModelConfig
    optim: OptimConfig


# Parameter counts of the original code after its silent overrides (scalegmn-spec §2.11).
ORIGINAL_PARAMS = {
    "mnist_cls/scalegmn": 1_772_042, "mnist_cls/scalegmn_bidir": 3_089_162,
    "fmnist_cls/scalegmn": 1_160_970, "fmnist_cls/scalegmn_bidir": 1_722_378,
    "cifar_inr_cls/scalegmn": 397_450, "cifar_inr_cls/scalegmn_bidir": 492_298,
    "cifar_inr_cls/scalegmn_aug": 2_285_322, "cifar_inr_cls/scalegmn_aug_bidir": 3_324_938,
    "cifar10/scalegmn_relu": 1_356_801, "cifar10/scalegmn_relu_bidir": 2_263_809,
    "cifar10/scalegmn_tanh": 2_318_849, "cifar10/scalegmn_tanh_bidir": 3_441_665,
    "cifar10/scalegmn_hetero": 1_688_577, "cifar10/scalegmn_hetero_bidir": 4_250_625,
    "svhn/scalegmn_relu": 467_969, "svhn/scalegmn_relu_bidir": 559_105,
    "svhn/scalegmn_tanh": 547_457, "svhn/scalegmn_tanh_bidir": 2_680_577,
    "mnist_editing/scalegmn": 4_002_058, "mnist_editing/scalegmn_bidir": 4_821_385,
}


def _m(**kw) -> ModelConfig:
    return ModelConfig(**kw)


def _o(bs, lr, wd, epochs=200, **kw) -> OptimConfig:
    return OptimConfig(batch_size=bs, lr=lr, weight_decay=wd, epochs=epochs, **kw)


_CNN = dict(input_node_value=0.0, mlp_on_io=True)
_PRESETS: dict[str, Preset] = {}


def _add(name: str, task: str, model: ModelConfig, optim: OptimConfig) -> None:
    _PRESETS[name] = Preset(name, task, model, optim)


_add("mnist_cls/scalegmn", "classification",
     _m(symmetry="sign", tau="sym", n_layers=4, d_hid=128, readout="last_layer", gnn_skip=True,
        edge_pe=True, num_mlps=2, dropout=0.2), _o(128, 1e-3, 1e-2, patience=50))
_add("mnist_cls/scalegmn_bidir", "classification",
     _m(direction="bidirectional", symmetry="sign", tau="sym", n_layers=4, d_hid=128,
        pe_msg=True, pe_upd=True, num_mlps=2, dropout=0.2), _o(128, 1e-3, 1e-3, patience=50))
for _d in ("forward", "bidirectional"):
    _add("fmnist_cls/scalegmn" + ("_bidir" if _d == "bidirectional" else ""), "classification",
         _m(direction=_d, symmetry="sign", tau="sym", n_layers=2, d_hid=128, readout="full_graph",
            gnn_skip=True, edge_pe=True, mlp_on_io=True, num_mlps=3, dropout=0.2, dropout_all=True),
         _o(128, 1e-3, 1e-2, patience=50))
_add("cifar_inr_cls/scalegmn", "classification",
     _m(symmetry="sign", tau="abs", n_layers=4, d_hid=64, mlp_on_io=True, num_mlps=3, dropout=0.2),
     _o(64, 1e-3, 5e-4, patience=50))
_add("cifar_inr_cls/scalegmn_bidir", "classification",
     _m(direction="bidirectional", symmetry="sign", tau="abs", n_layers=4, d_hid=64,
        sum_on_io=False, num_mlps=2, dropout=0.2, layer_norm=False), _o(64, 1e-3, 5e-4, patience=50))
_add("cifar_inr_cls/scalegmn_aug", "classification",
     _m(symmetry="sign", tau="sym", n_layers=4, d_hid=128, readout="full_graph", gnn_skip=True,
        mlp_on_io=True, num_mlps=3, dropout=0.1),
     _o(256, 1e-3, 1e-3, epochs=None, max_steps=200_000))
_add("cifar_inr_cls/scalegmn_aug_bidir", "classification",
     _m(direction="bidirectional", symmetry="sign", tau="sym", n_layers=4, d_hid=128,
        gnn_skip=True, mlp_on_io=True, num_mlps=3, dropout=0.2),
     _o(256, 1e-3, 1e-4, epochs=None, max_steps=300_000))
for _d, _sfx in (("forward", ""), ("bidirectional", "_bidir")):
    _add(f"cifar10/scalegmn_relu{_sfx}", "generalization",
         _m(direction=_d, symmetry="scale", n_layers=4, d_hid=128, num_mlps=2, **_CNN),
         _o(64, 1e-3, 1e-2))
_add("cifar10/scalegmn_tanh", "generalization",
     _m(symmetry="sign", tau="sym", n_layers=4, d_hid=128, readout="full_graph", num_mlps=3, **_CNN),
     _o(64, 1e-3, 1e-2))
_add("cifar10/scalegmn_tanh_bidir", "generalization",
     _m(direction="bidirectional", symmetry="sign", tau="sym", n_layers=4, d_hid=128,
        readout="full_graph", num_mlps=3, dropout=0.2, **_CNN), _o(32, 5e-4, 1e-2))
_add("cifar10/scalegmn_hetero", "generalization",
     _m(symmetry="hetero", tau="abs", n_layers=4, d_hid=128, num_mlps=2, dropout=0.2, **_CNN),
     _o(64, 1e-3, 1e-3))
_add("cifar10/scalegmn_hetero_bidir", "generalization",
     _m(direction="bidirectional", symmetry="hetero", tau="sym", n_layers=5, d_hid=128,
        gnn_skip=True, num_mlps=2, dropout=0.1, **_CNN), _o(64, 1e-3, 1e-3, epochs=250))
_add("svhn/scalegmn_relu", "generalization",
     _m(symmetry="scale", n_layers=4, d_hid=64, readout="full_graph", gnn_skip=True, num_mlps=3,
        **_CNN), _o(16, 1e-3, 0.0))
_add("svhn/scalegmn_relu_bidir", "generalization",
     _m(direction="bidirectional", symmetry="scale", n_layers=3, d_hid=64, readout="full_graph",
        gnn_skip=True, num_mlps=3, **_CNN), _o(64, 1e-3, 0.0))
_add("svhn/scalegmn_tanh", "generalization",
     _m(symmetry="sign", tau="sym", n_layers=4, d_hid=64, num_mlps=3, layer_norm=False, **_CNN),
     _o(64, 1e-3, 5e-4))
_add("svhn/scalegmn_tanh_bidir", "generalization",
     _m(direction="bidirectional", symmetry="sign", tau="sym", n_layers=3, d_hid=128,
        readout="full_graph", gnn_skip=True, num_mlps=3, dropout_all=True, **_CNN),
     _o(128, 1e-3, 1e-2))
_add("mnist_editing/scalegmn", "editing",
     _m(symmetry="sign", tau="abs", n_layers=10, d_hid=128, gnn_skip=True, mlp_on_io=True,
        num_mlps=3, dropout=0.1, dropout_all=True),
     _o(64, 1e-3, 1e-3, epochs=300, eval_every_steps=1000))
_add("mnist_editing/scalegmn_bidir", "editing",
     _m(direction="bidirectional", symmetry="sign", tau="abs", n_layers=10, d_hid=128,
        gnn_skip=True, mlp_on_io=True, num_mlps=2, dropout=0.1),
     _o(64, 1e-3, 1e-3, epochs=300, eval_every_steps=1000))


def list_presets() -> list[str]:
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    if name not in _PRESETS:
        raise ConfigError("preset", f"{name!r} is unknown; choose one of: {', '.join(_PRESETS)}")
    return _PRESETS[name]


# The original's full_graph readout builds an MLP d -> d -> d it never calls
# (PermScaleInvariantReadout.phi, spec §2.7); it counts in its parameters, not in ours.
UNUSED_ORIGINAL_PARAMS = {
    name: (128 * 128 + 128) * 2 + 2 * 128 if "svhn/scalegmn_relu" not in name else (64 * 64 + 64) * 2 + 2 * 64
    for name in (
        "fmnist_cls/scalegmn", "fmnist_cls/scalegmn_bidir", "cifar_inr_cls/scalegmn_aug",
        "cifar10/scalegmn_tanh", "cifar10/scalegmn_tanh_bidir", "svhn/scalegmn_relu",
        "svhn/scalegmn_relu_bidir", "svhn/scalegmn_tanh_bidir",
    )
}
# Our parameter counts (asserted in tests/model/test_param_counts.py).
EXPECTED_PARAMS = {k: v - UNUSED_ORIGINAL_PARAMS.get(k, 0) for k, v in ORIGINAL_PARAMS.items()}
PARAM_NOTES = {
    k: f"original counts an unused readout MLP of {n:,d} params (spec §2.7)"
    for k, n in UNUSED_ORIGINAL_PARAMS.items()
}
