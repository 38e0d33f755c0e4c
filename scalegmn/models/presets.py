"""Model and optimiser configurations, and the 20 original experiment presets by name.

Every preset reproduces one YAML of the original repository (docs/model.md §3.2) after the
original's silent overrides (every MLP has one hidden layer of width ``d_hid``). Differences
from the original, on purpose:

- ``backward_edges="auto"``: bidirectional models with ReLU/hetero symmetry invert the backward
  edge state (``ẽ = e / ‖e‖²``) so that backward messages are scale-equivariant (the
  original is not, docs/model.md §2.6). No parameters change. Near-zero edge states give large ẽ
  (``‖ẽ‖ = 1/‖e‖``); ``backward_eps > 0`` bounds it at the price of exactness for those edges,
  ``backward_edges="shared"`` restores the original behaviour.
- ``full_graph`` readouts have fewer parameters than the original's count: the original builds
  an MLP d -> d -> d in its readout that it never calls (docs/model.md §2.7, ``UNUSED_ORIGINAL_PARAMS``).
- Hetero models read positional features in ScaleInv (the original drops them, §2.10); no
  preset enables that, so counts are unchanged.
- Edge types follow the intended rule (§1.4).
- ``svhn/scalegmn_relu_bidir`` uses its YAML with the broken ``input_layers`` line removed;
  ``svhn/scalegmn_tanh`` had no batch size: 64 is used (the value of ``svhn/scalegmn_relu_bidir``).

``scalegmn presets`` prints each preset's parameter count beside the original's.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalegmn import schema
from scalegmn.errors import ConfigError
from scalegmn.schema import setting
from scalegmn.vocabulary import SYMMETRIES

#: The choice-valued model keys and their values (the schema's ``choices``).
CHOICES = {
    "kind": ("scalegmn", "gmn", "mlp", "statnn", "dws", "nfn_np", "nfn_hnp", "ng_gnn", "ng_t"),
    "direction": ("forward", "bidirectional"),
    "symmetry": SYMMETRIES,
    "tau": ("abs", "sym"),
    "readout": ("last_layer", "full_graph"),
    "backward_edges": ("auto", "inverse", "shared"),
    "input_scaling": ("none", "rms"),
    "attention": ("all_nodes", "neighbours"),
}


@dataclass(frozen=True)
class ModelConfig(schema.Section):
    """Every model option (docs/model.md §2, §3); each key's doc is in its field. See the module
    docstring for the differences from the original. Overridden per table, column and row under
    ``model:`` in config.yaml."""

    _section = "model"

    kind: str = setting("scalegmn", choices=CHOICES["kind"],
                        doc="scalegmn | gmn (permutation only) | mlp | statnn | dws | nfn_np | nfn_hnp | ng_gnn | "
                        "ng_t (baselines; dws/nfn_*: d_hid channels, n_layers equivariant layers; ng_*: Neural "
                        "Graphs' PNA GNN and relational transformer)")
    direction: str = setting("forward", choices=CHOICES["direction"],
                             doc="forward | bidirectional (ScaleGMN-B; ng_gnn/ng_t: reversed edges [0, w, w] too)")
    symmetry: str = setting("sign", choices=CHOICES["symmetry"],
                            doc="sign (sine/tanh) | scale (ReLU) | hetero (mixed, per graph) | permutation")
    n_layers: int = setting(4, min=1, doc="GNN layers")
    d_hid: int = setting(128, min=1, doc="hidden width of every MLP and node/edge state")
    tau: str = setting("abs", choices=CHOICES["tau"],
                       doc="invariant map for the sign group: abs (|x|) or sym (rho(x) + rho(-x))")
    readout: str = setting("last_layer", choices=CHOICES["readout"],
                           doc="last_layer (output neurons) | full_graph (pooled hidden + I/O neurons)")
    node_pe: bool = setting(True, doc="learned node type embeddings")
    edge_pe: bool = setting(False, doc="learned edge type embeddings")
    sum_on_io: bool = setting(True, doc="add (not multiply) the positional embedding on I/O nodes")
    pe_msg: bool = setting(False, doc="append the node PE to message inputs")
    pe_upd: bool = setting(False, doc="append the node PE to update inputs")
    mlp_on_io: bool = setting(False, doc="input/output nodes use a plain MLP instead of Gamma x * phi")
    num_mlps: int = setting(2, choices=(2, 3), doc="2 (one I/O MLP) or 3 (separate input and output MLPs)")
    dropout: float = setting(0.0, min=0.0, max=1.0, max_open=True, doc="dropout after every GNN layer")
    dropout_all: bool = setting(False, doc="also dropout inside every MLP")
    layer_norm: bool = setting(True, doc="layer norm in the GNN layers")
    gnn_skip: bool = setting(False, doc="linear skip connection around each layer")
    input_node_value: float = setting(1.0, doc="node feature of input neurons (1 for INRs, 0 for CNNs in the original)")
    out_scale: float = setting(0.01, doc="initial alpha_l, beta_l of the editing head")
    backward_edges: str = setting("auto", choices=CHOICES["backward_edges"],
                                  doc="auto (inverse for scale/hetero, shared for sign) | inverse | shared")
    backward_eps: float = setting(0.0, min=0.0,
                                  doc="clamp |e|^2 >= eps in the inverse backward edge state (0: exact)")
    baseline_layers: int = setting(3, min=1, doc="depth of the MLP / StatNN baselines (hidden width d_hid), "
                                   "and of the head MLP of dws / nfn_np / nfn_hnp")
    head_hid: int | None = setting(None, min=1, doc="hidden width of the dws / nfn_* head MLP (null: d_hid)")
    embed_dim: int = setting(32, min=1, doc="embedding task: size of the (L2-normalised) embedding the readout gives")
    n_heads: int = setting(8, min=1, doc="ng_t: attention heads (2 * d_hid must be a multiple)")
    attention: str = setting("all_nodes", choices=CHOICES["attention"],
                             doc="ng_t: each node attends over all nodes of its network (Neural Graphs') "
                             "or over its neighbours and itself only (fewer pairs, faster)")
    d_edge: int | None = setting(None, min=1,
                                 doc="ng_gnn/ng_t: edge state width (null: d_hid for ng_gnn, d_hid // 2 for ng_t)")
    fourier_sigma: float = setting(3.0, min=0.0,
                                   doc="ng_gnn/ng_t: std of the random Fourier features of weights and "
                                   "biases (Neural Graphs' inp_factor); 0: a linear embedding")
    input_scaling: str = setting(
        "none", choices=CHOICES["input_scaling"],
        doc="none (raw weights, as the original) | rms: divide each layer's weights and biases by their "
        "RMS over the training split (keeps every symmetry; calibrated by the training job)")


def _positive(value: float) -> str | None:
    return None if value > 0 else f"expected a number > 0, got {value}"


@dataclass(frozen=True)
class OptimConfig(schema.Section):
    """AdamW with linear warm-up, gradient clipping; length in epochs or steps. Overridden per
    table, column and row under ``optim:`` in config.yaml."""

    _section = "optim"

    batch_size: int = setting(128, min=1, doc="networks per optimizer step")
    lr: float = setting(1e-3, min=0.0, doc="AdamW learning rate")
    weight_decay: float = setting(1e-2, min=0.0, doc="AdamW weight decay")
    epochs: int | None = setting(200, min=1, doc="training length in epochs (max_steps wins when set)")
    max_steps: int | None = setting(None, min=1, doc="training length in optimizer steps")
    eval_every_steps: int | None = setting(None, min=1, doc="evaluate every N steps (null: every epoch)")
    clip_grad_norm: float = setting(10.0, min=0.0, doc="gradient norm clipping")
    warmup_steps: int = setting(1000, min=0, doc="linear learning-rate warm-up steps")
    patience: int | None = setting(None, min=0, doc="stop after this many evaluations without improvement")
    temperature: float = setting(0.1, check=_positive,
                                 doc="embedding task: InfoNCE temperature (cosine similarities are divided by it)")
    positive_noise: float = setting(
        0.05, min=0.0, doc="embedding task: a positive is the network moved to a random point of its symmetry "
        "orbit plus Gaussian noise of this std relative to each layer's RMS (also the retrieval queries)")
    positive: str = setting(
        "copy", choices=("copy", "sibling"), doc="embedding task: whose noisy, symmetry-moved copy is a "
        "network's positive: copy = its own; sibling = another checkpoint of its training run or INR of its "
        "image (CNN Wild Park, augmented CIFAR-10 INRs; networks without one use their own)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs is None and self.max_steps is None:
            raise ConfigError("optim.epochs", "give epochs or max_steps")


@dataclass(frozen=True)
class Preset:
    """One original experiment: its task, model and optimiser settings."""

    name: str
    task: str  # classification | generalization | editing
    model: ModelConfig
    optim: OptimConfig


# Parameter counts of the original code after its silent overrides (docs/model.md §2.11).
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

# Neural Graphs' baselines (kind ng_gnn / ng_t) at the sizes of their paper's runs: the model
# config and the run script of github.com/mkofinas/neural-graphs @ NG_COMMIT, as cited per
# preset in PRESET_SOURCES. Mapped onto our keys: PNA d_hid -> d_hid (edges d_hid); the
# transformer's d_node -> d_hid, d_edge -> d_edge (its attention, node-MLP and output widths are
# 2 d_hid, its edge-MLP width 2 d_edge: NG's values for INRs and the CNN zoo; Wild Park used
# d_attn_hid 32 and d_edge_hid 64 where we have 64 and 32); rev_edge_features -> direction
# bidirectional; inp_factor -> fourier_sigma (sin_emb False -> 0); per-layer weight/bias
# statistics (NG's data stats, used for INRs) -> input_scaling rms. Not reproduced: AdamW's
# amsgrad, BCE losses (ours: MSE of the sigmoid), NG's data augmentation (set in the views),
# probe features, the Wild Park activation embeddings.
NG_COMMIT = "1f2b671ab4988ef212469363005a5b99eec16580"
_NG = dict(input_node_value=0.0)  # NG's input nodes carry no bias: a zero feature
PRESET_SOURCES: dict[str, str] = {}


def _add_ng(name: str, task: str, model: ModelConfig, optim: OptimConfig, source: str) -> None:
    _add(name, task, model, optim)
    PRESET_SOURCES[name] = f"mkofinas/neural-graphs@{NG_COMMIT[:7]}: {source}"


_INR_CLS = "experiments/inr_classification/configs/model/{}.yaml + scripts/{}_cls_{}.sh"
for _g, _ds in (("mnist_cls", "mnist"), ("fmnist_cls", "fmnist"), ("cifar_inr_cls", "mnist")):
    _note = "" if _g != "cifar_inr_cls" else " (NG has no CIFAR-10 INR config: MNIST's)"
    _add_ng(f"{_g}/ng_gnn", "classification",
            _m(kind="ng_gnn", d_hid=32, n_layers=4, dropout=0.2, direction="bidirectional",
               fourier_sigma=3.0, input_scaling="rms", **_NG),
            _o(128, 1e-3, 5e-4, eval_every_steps=1000), _INR_CLS.format("pna", _ds, "pna") + _note)
    _add_ng(f"{_g}/ng_t", "classification",
            _m(kind="ng_t", d_hid=64, d_edge=32, n_layers=4, n_heads=8, dropout=0.2,
               fourier_sigma=1.0, input_scaling="rms", **_NG),
            _o(128, 1e-3, 5e-4, eval_every_steps=1000), _INR_CLS.format("rtransformer", _ds, "rt") + _note)
_add_ng("cifar10/ng_gnn", "generalization",
        _m(kind="ng_gnn", d_hid=256, n_layers=4, fourier_sigma=3.0, **_NG),
        _o(128, 1e-3, 5e-4, epochs=300, warmup_steps=0, eval_every_steps=100),
        "experiments/cnn_generalization/configs/model/pna.yaml + scripts/cnn_zoo_pna.sh")
_add_ng("cifar10/ng_t", "generalization",
        _m(kind="ng_t", d_hid=128, d_edge=64, n_layers=4, n_heads=8, fourier_sigma=1.0, **_NG),
        _o(192, 1e-3, 5e-4, epochs=300, warmup_steps=0, eval_every_steps=100),
        "experiments/cnn_generalization/configs/model/rtransformer.yaml + scripts/cnn_zoo_rt.sh")
_add_ng("cnn_park/ng_gnn", "generalization",
        _m(kind="ng_gnn", d_hid=64, n_layers=4, fourier_sigma=3.0, **_NG),
        _o(128, 1e-3, 5e-4, epochs=20, warmup_steps=0, eval_every_steps=1000),
        "experiments/cnn_generalization/configs/model/pna.yaml + scripts/cnn_park_pna.sh")
_add_ng("cnn_park/ng_t", "generalization",
        _m(kind="ng_t", d_hid=32, d_edge=16, n_layers=3, n_heads=4, dropout=0.2, fourier_sigma=1.0, **_NG),
        _o(128, 1e-3, 5e-4, epochs=20, warmup_steps=0, eval_every_steps=1000),
        "experiments/cnn_generalization/configs/model/rtransformer.yaml + scripts/cnn_park_rt.sh")
_add_ng("mnist_editing/ng_gnn", "editing",
        _m(kind="ng_gnn", d_hid=128, n_layers=4, dropout=0.2, direction="bidirectional",
           fourier_sigma=0.0, out_scale=0.01, input_scaling="rms", **_NG),
        _o(128, 1e-3, 5e-4, epochs=200, warmup_steps=10_000, clip_grad_norm=1.0, eval_every_steps=1000),
        "experiments/style_editing/configs/model/pna.yaml + scripts/mnist_dilation_gnn.sh")
_add_ng("mnist_editing/ng_t", "editing",
        _m(kind="ng_t", d_hid=64, d_edge=32, n_layers=4, n_heads=4, dropout=0.3, direction="bidirectional",
           fourier_sigma=3.0, out_scale=0.01, input_scaling="rms", **_NG),
        _o(128, 1e-3, 5e-4, epochs=200, warmup_steps=10_000, clip_grad_norm=1.0, eval_every_steps=1000),
        "experiments/style_editing/configs/model/rtransformer.yaml + scripts/mnist_dilation_rt.sh")


# --- The weight-space baselines (scalegmn/models/nfn_dws.py) at their papers' sizes. ---
# DWS: AvivNavon/DWSNets experiments/mnist/trainer.py (commit 1174af5): dim_hidden 32, n_hidden 4
# (5 equivariant layers), n_out_fc 1 (a linear head), reduction max, AdamW lr 5e-3 wd 5e-4,
# batch 512, 100 epochs; the same for every INR zoo (the ScaleGMN paper reports DWS on MNIST,
# FMNIST, CIFAR-10 INRs and editing). NFN: AllanYangZhou/nfn experiments/ (commit ce78322 for
# classify_siren_configs, 3c71582 for predict_gen_configs, 8ad3ff3 for stylize_configs):
# INR classification nfnet/inv_ff.yaml: 3 NF layers of 512 channels, MlpHead (3 linear maps,
# width 1000, dropout 0.5), AdamW lr 1e-4 wd 0.01, batch 32, 10k warm-up, 200k steps;
# generalization nfnet/hnp_inv.yaml: channels [16, 16, 5] (here 3 x 16), MlpHead width 1000,
# batch 8, lr 1e-3, no warm-up, 50 epochs; editing nfnet/equiv.yaml: 3 layers of 128 channels,
# out_scale 0.01, Adam lr 1e-3, batch 32, 50k steps. DWSNets has no dilation (editing) config:
# mnist_editing/dws uses its MNIST classification sizes.
BASELINE_SOURCES = {
    "dws": "DWSNets experiments/mnist/trainer.py defaults (AvivNavon/DWSNets@1174af5)",
    "nfn_cls": "NFN classify_siren_configs/nfnet/inv_ff.yaml (AllanYangZhou/nfn@ce78322)",
    "nfn_gen": "NFN predict_gen_configs/nfnet/hnp_inv.yaml (AllanYangZhou/nfn@3c71582)",
    "nfn_edit": "NFN stylize_configs/nfnet/equiv.yaml (AllanYangZhou/nfn@8ad3ff3)",
}
_DWS = dict(kind="dws", n_layers=5, d_hid=32, baseline_layers=1)
_NFN_CLS = dict(n_layers=3, d_hid=512, head_hid=1000, baseline_layers=3, dropout=0.5)
_NFN_GEN = dict(n_layers=3, d_hid=16, head_hid=1000, baseline_layers=3)
for _g in ("mnist_cls", "fmnist_cls", "cifar_inr_cls"):
    _add(f"{_g}/dws", "classification", _m(**_DWS), _o(512, 5e-3, 5e-4, epochs=100))
    for _k in ("nfn_np", "nfn_hnp"):
        _add(f"{_g}/{_k}", "classification", _m(kind=_k, **_NFN_CLS),
             _o(32, 1e-4, 1e-2, epochs=None, max_steps=200_000, warmup_steps=10_000))
for _g in ("cifar10", "svhn"):
    for _k in ("nfn_np", "nfn_hnp"):
        _add(f"{_g}/{_k}", "generalization", _m(kind=_k, **_NFN_GEN),
             _o(8, 1e-3, 0.0, epochs=50, warmup_steps=0))
_add("mnist_editing/dws", "editing", _m(**_DWS), _o(512, 5e-3, 5e-4, epochs=100))
for _k in ("nfn_np", "nfn_hnp"):
    _add(f"mnist_editing/{_k}", "editing", _m(kind=_k, n_layers=3, d_hid=128, out_scale=0.01),
         _o(32, 1e-3, 0.0, epochs=None, max_steps=50_000, warmup_steps=0))


def list_presets() -> list[str]:
    """The preset names, ``<experiment>/<model>``, in catalogue order."""
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    """The preset ``name``; ``ConfigError`` listing the names when it is unknown."""
    if name not in _PRESETS:
        raise ConfigError("preset", f"{name!r} is unknown; choose one of: {', '.join(_PRESETS)}")
    return _PRESETS[name]


# The original's full_graph readout builds an MLP d -> d -> d it never calls
# (PermScaleInvariantReadout.phi, docs/model.md §2.7); it counts in its parameters, not in ours.
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
    k: f"original counts an unused readout MLP of {n:,d} params (docs/model.md §2.7)"
    for k, n in UNUSED_ORIGINAL_PARAMS.items()
}
