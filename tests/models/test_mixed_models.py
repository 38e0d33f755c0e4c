"""Models on batches of mixed architectures (different depths, kernels, activations, a residual
connection), float64: invariance to every network's own symmetries with controls,
equivariance of the node states, batching consistency, and the general path equal to the
block fast path where both apply."""

from __future__ import annotations

import pytest
import torch

from scalegmn.errors import ConfigError
from scalegmn.models.metanetworks import as_flat_graph, build_model
from scalegmn.models.presets import get_preset
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.graph import ZooSpec
from scalegmn.weightspace.network import NetworkSpec, cnn_zoo_spec
from scalegmn.weightspace.symmetry import apply_group_element, random_group_element
from scalegmn.weightspace.testing import assert_symmetric, jitter, random_network, relative_change

RESIDUAL = NetworkSpec((3, 4, 6, 5, 8, 10), ("relu", "gelu", "tanh", "leaky_relu", "identity"),
                       layer_kinds=("conv",) * 4 + ("linear",), kernel_size=(3, 3), conv_padding=1,
                       residual=(-1, -1, 0, -1, -1))
DEEP = NetworkSpec((3, 5, 4, 6, 5, 8, 10), ("tanh", "relu", "tanh", "sigmoid", "tanh", "identity"),
                   layer_kinds=("conv",) * 5 + ("linear",), kernel_size=(5, 5), conv_padding=2)
SHALLOW = NetworkSpec((3, 7, 10), ("sigmoid", "identity"), layer_kinds=("conv", "linear"),
                      kernel_size=(7, 7), conv_padding=3)
RELU = cnn_zoo_spec("relu").__class__((3, 6, 6, 10), ("relu", "relu", "identity"),
                                      layer_kinds=("conv", "conv", "linear"), kernel_size=(3, 3))
SPECS = (RESIDUAL, DEEP, SHALLOW, RELU)
ZOO = ZooSpec.covering(SPECS)
SIZES = (2, 2, 1, 2)
CONFIGS = {
    "forward": ("cifar10/scalegmn_hetero", {}),
    "bidirectional": ("cifar10/scalegmn_hetero_bidir", {}),
    "full_graph": ("cifar10/scalegmn_hetero", {"readout": "full_graph", "tau": "sym"}),
    "gmn": ("cifar10/scalegmn_hetero", {"kind": "gmn"}),
    "gmn_bidir": ("cifar10/scalegmn_hetero_bidir", {"kind": "gmn"}),
    # Neural Graphs' baselines (permutations only, like the GMN)
    "ng_gnn": ("cifar10/scalegmn_hetero", {"kind": "ng_gnn"}),
    "ng_t": ("cifar10/scalegmn_hetero", {"kind": "ng_t", "n_heads": 2}),
    "ng_t_neighbours_bidir": ("cifar10/scalegmn_hetero", {"kind": "ng_t", "n_heads": 2, "attention": "neighbours",
                                                           "direction": "bidirectional"}),
}
PERMUTATION_ONLY = ("gmn", "ng_")


def model_for(which, zoo=ZOO, **extra):
    name, overrides = CONFIGS[which]
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 12, "n_layers": 2, "dropout": 0.0, **overrides, **extra})
    return build_model(config, zoo, task="generalization", n_outputs=1).double().eval()


def mixed_batch(seed=0):
    return MixedBatch(tuple(random_network(s, (n,), seed=seed + k) for k, (s, n) in
                            enumerate(zip(SPECS, SIZES, strict=True))))


def transform(batch, seed, *, group_fn=random_group_element, permute=True):
    """Every network gets its own random valid group element; returns the elements too."""
    groups, elems = [], []
    for k, net in enumerate(batch.groups):
        perms, scales = group_fn(net.spec, torch.Generator().manual_seed(seed + k),
                                 net.batch_shape, permute=permute)
        groups.append(apply_group_element(net, perms, scales))
        elems.append((perms, scales))
    return MixedBatch(tuple(groups)), elems


def control(batch):
    return MixedBatch(tuple(jitter(net, seed=3 + k) for k, net in enumerate(batch.groups)))


@pytest.mark.parametrize("which", list(CONFIGS))
def test_invariant_under_each_networks_symmetries(which):
    model = model_for(which)
    with torch.no_grad():
        for seed in range(2):
            batch = mixed_batch(seed)
            ref = model(batch)
            moved, _ = transform(batch, 10 + seed, permute=True)
            if which.startswith(PERMUTATION_ONLY):  # the GMN and NG models respect permutations only
                moved, _ = transform(batch, 10 + seed, group_fn=_permutations_only)
            sym = relative_change(ref, model(moved))
            ctrl = relative_change(ref, model(control(batch)))
            assert_symmetric(sym, ctrl, what=f"{which} seed {seed}")


def _permutations_only(spec, generator, batch_shape, permute=True):
    perms, scales = random_group_element(spec, generator, batch_shape, permute=permute)
    return perms, [torch.ones_like(s) for s in scales]


def test_scalegmn_is_not_invariant_to_non_symmetries():
    """CONTROLS: a sign flip on a ReLU layer, and a permutation that breaks the residual tie
    (full-graph readout: the residual edges into hidden layer 3 are within its receptive field;
    a last-layer readout of 2 layers would not see them)."""
    model = model_for("full_graph", n_layers=3)
    batch = mixed_batch(4)
    with torch.no_grad():
        ref = model(batch)
        ctrl = relative_change(ref, model(control(batch)))
        net = batch.groups[0]  # RESIDUAL: hidden layer 1 is ReLU, tied to layer 3 on 4 channels
        perms, scales = random_group_element(net.spec, torch.Generator().manual_seed(5), net.batch_shape)
        flipped = [s.clone() for s in scales]
        flipped[3] = -flipped[3]  # layer 4, leaky ReLU: -1 is not a positive scale
        bad = MixedBatch((apply_group_element(net, perms, flipped), *batch.groups[1:]))
        assert relative_change(ref, model(bad)) > 1e-3 * ctrl
        untied = list(perms)
        untied[2] = torch.roll(perms[2], 1, dims=-1)
        bad = MixedBatch((apply_group_element(net, untied, scales), *batch.groups[1:]))
        assert relative_change(ref, model(bad)) > 1e-3 * ctrl


def _node_map(fg, batch, elems):
    """Flat rows: new row -> old row and the old row's scale (hidden neurons)."""
    old_row = torch.arange(fg.num_nodes)
    q = torch.ones(fg.num_nodes, dtype=torch.float64)
    k = 0
    for net, (perms, scales) in zip(batch.groups, elems, strict=True):
        layout = net.spec.layout
        for b in range(net.batch_shape[0]):
            rows = torch.nonzero(fg.node_graph == k).squeeze(-1)  # the graph's nodes, local order
            start = layout[0]
            for layer in range(1, len(layout) - 1):
                n = layout[layer]
                local = start + perms[layer - 1][b]
                old_row[rows[start:start + n]] = rows[local]
                q[rows[start:start + n]] = scales[layer - 1][b]  # per old neuron
                start += n
            k += 1
    return old_row, q


@pytest.mark.parametrize("which", ["forward", "bidirectional"])
def test_node_states_are_equivariant(which):
    model = model_for(which)
    batch = mixed_batch(6)
    moved, elems = transform(batch, 20)
    with torch.no_grad():
        g, g2 = (as_flat_graph(b, model.input_value, ZOO) for b in (batch, moved))
        h, h2 = model._states(g)[0], model._states(g2)[0]
        h_ctrl = model._states(as_flat_graph(control(batch), model.input_value, ZOO))[0]
    old_row, q = _node_map(g, batch, elems)
    want = q[old_row].unsqueeze(-1) * h[old_row]
    sym = float((h2 - want).norm() / want.norm())
    ctrl = float((h_ctrl - h).norm() / h.norm())
    assert_symmetric(sym, ctrl, what=f"{which} node states")


@pytest.mark.parametrize("which", ["forward", "bidirectional", "gmn", "ng_gnn", "ng_t"])
def test_mixed_batch_equals_each_group_alone(which):
    model = model_for(which)
    batch = mixed_batch(7)
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(MixedBatch((net,))) for net in batch.groups])
        reordered = model(MixedBatch(batch.groups[::-1]))
    torch.testing.assert_close(together, alone, rtol=1e-12, atol=1e-12)
    sizes = list(batch.group_sizes)
    back = torch.cat(list(torch.split(reordered, sizes[::-1]))[::-1])
    torch.testing.assert_close(together, back, rtol=1e-12, atol=1e-12)
    assert relative_change(together[:2], together[2:4]) > 1e-3  # networks do differ


def test_general_path_equals_the_fast_path_for_one_architecture():
    """GMN without type encodings: the same parameters give the same outputs on the block
    fast path (NetworkSpec) and the general path (ZooSpec) of a one-architecture batch."""
    spec = cnn_zoo_spec("relu")
    extra = {"node_pe": False, "edge_pe": False}
    fast = model_for("gmn_bidir", zoo=spec, **extra)
    general = model_for("gmn_bidir", zoo=ZooSpec.covering([spec]), **extra)
    general.load_state_dict(fast.state_dict())
    net = random_network(spec, (3,), seed=8)
    with torch.no_grad():
        torch.testing.assert_close(general(WeightBatch(net)), fast(WeightBatch(net)))
        torch.testing.assert_close(general(MixedBatch((net,))), fast(WeightBatch(net)))


def test_mixed_models_train_and_refuse_clearly():
    model = model_for("bidirectional").train()
    batch = mixed_batch(9)
    model(batch).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and all(bool(torch.isfinite(g).all()) for g in grads)
    preset = get_preset("cifar10/scalegmn_relu")
    with pytest.raises(ConfigError, match="hetero"):
        build_model(preset.model, ZOO, task="generalization", n_outputs=1)
    with pytest.raises(ConfigError, match="one architecture"):
        build_model(preset.model.override({"kind": "mlp"}), ZOO, task="generalization", n_outputs=1)
    statnn = build_model(preset.model.override({"kind": "statnn", "d_hid": 8}), ZOO, task="generalization",
                         n_outputs=1)  # layer slots of the deepest network
    assert statnn(batch).shape == (batch.size, 1)
    with pytest.raises(ConfigError, match="editing"):
        build_model(preset.model.override({"symmetry": "hetero"}), ZOO, task="editing", n_outputs=1)
    with pytest.raises(ValueError, match="ZooSpec.covering"):
        model(MixedBatch((random_network(RELU.__class__((3, 4, 4, 4, 4, 4, 4, 4, 10),
                                                        ("relu",) * 7 + ("identity",)), (1,)),)))
    single = build_model(preset.model.override({"d_hid": 8, "n_layers": 1}), RELU,
                         task="generalization", n_outputs=1)
    with pytest.raises(ValueError, match="mixed architectures"):
        single(batch)


def test_micro_batches_of_a_mixed_batch_give_the_same_outputs():
    model = model_for("forward")
    batch = MixedBatch(mixed_batch(10).groups, y=torch.arange(7.0), index=torch.arange(7))
    with torch.no_grad():
        whole = model(batch)
        parts = [batch.take(slice(s, s + 3)) for s in range(0, 7, 3)]
        torch.testing.assert_close(torch.cat([model(p) for p in parts]), whole, rtol=1e-12, atol=1e-12)
    assert [p.size for p in parts] == [3, 3, 1] and torch.equal(parts[1].y, torch.arange(3.0, 6.0))
    assert parts[1].group_sizes == (1, 1, 1)  # rows 3..5: the last of group 2, groups 3 and 4
