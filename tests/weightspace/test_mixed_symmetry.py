"""Symmetries of mixed architectures (per-layer activations, residual ties) preserve the
function in float64; untied permutations and sign flips of ReLU/GELU layers do not (controls)."""

from __future__ import annotations

import pytest
import torch

from scalegmn.weightspace.functional import cnn_forward, mlp_forward
from scalegmn.weightspace.network import NetworkSpec, cnn_zoo_spec
from scalegmn.weightspace.symmetry import (
    apply_group_element,
    permute_hidden,
    random_group_element,
    random_permutations,
    random_scales,
    random_symmetry,
    scale_hidden,
    tied_kind,
)
from scalegmn.weightspace.testing import random_network

B = 3


def cnn_spec(acts=("relu", "gelu", "tanh", "leaky_relu"), residual=(-1, -1, 0, 1, -1)):
    """Wild Park-like: kernels 3x3 padding 1, two residual ties (node layers 1-3 and 2-4)."""
    return NetworkSpec((3, 4, 6, 5, 8, 10), (*acts, "identity"), layer_kinds=("conv",) * 4 + ("linear",),
                       kernel_size=(3, 3), conv_padding=1, residual=residual)


def chain_spec(acts=("tanh", "relu", "tanh", "gelu", "tanh")):
    """A chain of ties of different sizes: node layers 1 (8) - 3 (6) - 5 (8) on 6 channels,
    2 (4) - 4 (5) on 4: blocks [0, 6) shared by 1, 3, 5 and [6, 8) free in 1 and 5."""
    return NetworkSpec((3, 8, 4, 6, 5, 8, 10), (*acts, "identity"), layer_kinds=("conv",) * 5 + ("linear",),
                       kernel_size=(5, 5), conv_padding=2, residual=(-1, -1, 0, 1, 2, -1))


MLP = NetworkSpec((2, 8, 6, 5, 1), ("tanh", "relu", "gelu", "identity"))
SPECS = {"cnn": cnn_spec(), "cnn_sign_tie": cnn_spec(("tanh", "gelu", "tanh", "sigmoid")),
         "chain": chain_spec(), "chain_sign": chain_spec(("tanh", "relu", "tanh", "gelu", "sine")),
         "mlp": MLP}


def run(net):
    spec = net.spec
    g = torch.Generator().manual_seed(7)
    if spec.is_cnn:
        x = torch.randn(4, spec.layout[0], 6, 6, generator=g, dtype=torch.float64)
        return cnn_forward(spec, net.weights, net.biases, x.expand(B, *x.shape))
    return mlp_forward(spec, net.weights, net.biases, torch.randn(16, spec.layout[0], generator=g,
                                                                  dtype=torch.float64))


def change(a, b):
    return float((a - b).norm() / a.norm())


@pytest.mark.parametrize("name", list(SPECS))
def test_random_symmetry_preserves_the_function(name):
    spec = SPECS[name]
    for seed in range(3):
        net = random_network(spec, (B,), seed=seed)
        moved = random_symmetry(net, torch.Generator().manual_seed(100 + seed))
        assert change(net.flat(), moved.flat()) > 0.1  # the element did move the weights
        # float64 rounding of a 5-layer forward: ~1e-16 relative; 1e-12 leaves ample room.
        assert change(run(net), run(moved)) < 1e-12, name


def test_group_element_respects_kinds_and_ties():
    spec = chain_spec()
    perms, scales = random_group_element(spec, torch.Generator().manual_seed(0), (B,))
    # Node layers 1, 3, 5 agree on [:6]; 2 and 4 on [:4]; each maps the tied block onto itself.
    for a, b, m in ((0, 2, 6), (2, 4, 6), (1, 3, 4)):
        assert torch.equal(perms[a][..., :m], perms[b][..., :m])
        assert torch.equal(scales[a][..., :m], scales[b][..., :m])
        assert bool((perms[a][..., :m] < m).all())
    # tanh, tanh, tanh on the shared block: sign; [6, 8) of layer 1 (tanh) alone: sign too.
    assert set(scales[0].unique().tolist()) == {-1.0, 1.0}
    assert bool((scales[1] == 1).all())  # relu tied to gelu on all its 4 channels: {+1}
    assert bool((scales[3] == 1).all())  # gelu: permutation only
    assert tied_kind(["sign", "positive"]) == "none" and tied_kind(["sign", "sign"]) == "sign"
    assert tied_kind(["positive", "none"]) == "none" and tied_kind(["sign", "fixed"]) == "fixed"


def test_relu_layer_tied_to_gelu_keeps_only_unit_scales_on_the_tie():
    spec = cnn_spec(("relu", "gelu", "tanh", "relu"))  # ties 1-3 (relu, tanh) and 2-4 (gelu, relu)
    _, scales = random_group_element(spec, torch.Generator().manual_seed(1), (B,))
    assert bool((scales[0] == 1).all())  # relu tied to tanh on all 4 channels: {+1}
    assert bool((scales[3][..., :6] == 1).all()) and bool((scales[3][..., 6:] != 1).all())


@pytest.mark.parametrize("name", ["cnn", "chain"])
def test_untied_permutation_changes_the_function(name):
    """CONTROL: the same element, but one tied layer permuted on its own."""
    spec = SPECS[name]
    net = random_network(spec, (B,), seed=3)
    perms, scales = random_group_element(spec, torch.Generator().manual_seed(4), (B,))
    ok = apply_group_element(net, perms, scales)
    bad_perms = list(perms)
    bad_perms[2] = torch.roll(perms[2], 1, dims=-1)
    bad = apply_group_element(net, bad_perms, scales)
    # Without the tie the roll is a valid permutation of node layer 3: check that first.
    untied = NetworkSpec(**{**spec.to_dict(), "residual": ()})
    assert change(run(net.replace(spec=untied)), run(bad.replace(spec=untied))) < 1e-12
    assert change(run(net), run(ok)) < 1e-12
    assert change(run(net), run(bad)) > 1e-3


@pytest.mark.parametrize("layer,act", [(0, "relu"), (1, "gelu"), (3, "leaky_relu")])
def test_sign_flip_of_a_non_odd_layer_changes_the_function(layer, act):
    """CONTROL: a sign flip is a symmetry of tanh layers only."""
    spec = cnn_spec(("relu", "gelu", "tanh", "leaky_relu"), residual=())
    assert spec.activations[layer] == act
    net = random_network(spec, (B,), seed=5)
    perms, scales = random_group_element(spec, torch.Generator().manual_seed(6), (B,))
    flipped = [s.clone() for s in scales]
    flipped[layer] = -flipped[layer]
    assert change(run(net), run(apply_group_element(net, perms, scales))) < 1e-12
    assert change(run(net), run(apply_group_element(net, perms, flipped))) > 1e-3
    flipped = [s.clone() for s in scales]
    flipped[2] = -flipped[2]  # tanh: a symmetry
    assert change(run(net), run(apply_group_element(net, perms, flipped))) < 1e-12


def test_uniform_specs_draw_as_before():
    spec = cnn_zoo_spec("relu")
    net = random_network(spec, (B,), seed=0)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    old = permute_hidden(scale_hidden(net, random_scales(spec, g2, "positive", (B,))),
                         random_permutations(spec, g2, (B,)))
    assert torch.equal(random_symmetry(net, g1).flat(), old.flat())
