"""MLP and StatNN baselines: shapes, and which symmetries they (do not) respect."""

from __future__ import annotations

import pytest
import torch

from scalegmn.errors import ConfigError
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import ModelConfig
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import dws_siren_spec
from scalegmn.weightspace.symmetry import permute_hidden, random_permutations
from scalegmn.weightspace.testing import check_symmetry, random_network

SPEC = dws_siren_spec()


def model(kind, task="classification"):
    cfg = ModelConfig(kind=kind, d_hid=16)
    return build_model(cfg, SPEC, task=task, n_outputs=10).double().eval()


def test_statnn_is_permutation_invariant_and_mlp_is_not():
    net = random_network(SPEC, (3,))
    perms = random_permutations(SPEC, torch.Generator().manual_seed(0), (3,))
    stat, mlp = model("statnn"), model("mlp")
    sym, ctrl = check_symmetry(lambda n: stat(WeightBatch(n)), net, lambda n: permute_hidden(n, perms))
    assert sym < 1e-10 < ctrl
    moved, ctrl = check_symmetry(lambda n: mlp(WeightBatch(n)), net, lambda n: permute_hidden(n, perms))
    assert moved > 1e-3 * ctrl


def test_baseline_shapes_and_editing():
    net = random_network(SPEC, (3,))
    assert model("statnn")(WeightBatch(net)).shape == (3, 10)
    dw, db = model("mlp", "editing")(WeightBatch(net))
    assert [t.shape for t in dw] == [t.shape for t in net.weights]
    assert [t.shape for t in db] == [t.shape for t in net.biases]
    with pytest.raises(ConfigError, match="model.kind"):
        model("statnn", "editing")


def _wild_specs():
    from scalegmn.weightspace.network import NetworkSpec

    conv = dict(kernel_size=(3, 3), conv_padding=1)
    return [
        NetworkSpec((3, 4, 8, 10), ("relu", "gelu", "identity"), layer_kinds=("conv", "conv", "linear"), **conv),
        NetworkSpec((3, 8, 4, 4, 6, 10), ("tanh", "sigmoid", "leaky_relu", "relu", "identity"),
                    layer_kinds=("conv",) * 4 + ("linear",), residual=(-1, -1, 0, 1, -1), **conv),
    ]


def test_statnn_reads_mixed_architectures_in_layer_slots():
    from scalegmn.weightspace.batch import MixedBatch

    torch.manual_seed(0)
    specs = _wild_specs()
    groups = [random_network(s, (3,), scale=0.3, dtype=torch.float64) for s in specs]
    deepest = specs[1]
    m = build_model(ModelConfig(kind="statnn", d_hid=16, baseline_layers=2), deepest,
                    task="generalization", n_outputs=1)
    m = m.double().eval()
    out = m(MixedBatch(groups))
    # Batching: each architecture's group alone gives the same rows.
    alone = torch.cat([m(MixedBatch([g])) for g in groups])
    torch.testing.assert_close(out, alone)
    # Invariance: a random hidden permutation of every network leaves the output unchanged.
    gen = torch.Generator().manual_seed(1)
    shuffled = [permute_hidden(g, random_permutations(g.spec, gen, (3,))) for g in groups[:1]] + groups[1:]
    torch.testing.assert_close(m(MixedBatch(shuffled)), out)
    # Control: changing one weight of the shallow network's head changes its output only.
    w = [t.clone() for t in groups[0].weights]
    w[-1][0, 0, 0] += 1.0
    moved = m(MixedBatch([groups[0].replace(weights=tuple(w)), groups[1]]))
    assert (moved[0] - out[0]).abs().max() > 1e-6
    torch.testing.assert_close(moved[3:], out[3:])
