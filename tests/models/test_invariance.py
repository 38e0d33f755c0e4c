"""Invariance of every invariant preset (small widths, float64) to the symmetries of its zoo,
each against a control perturbation that is not a symmetry."""

from __future__ import annotations

import pytest
import torch

from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset, list_presets
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network
from scalegmn.weightspace.symmetry import (
    permute_hidden,
    random_mixed_scales,
    random_permutations,
    random_scales,
    scale_hidden,
)
from scalegmn.weightspace.testing import assert_symmetric, check_symmetry, random_network

B = 3
SIGN_MASK = torch.tensor([True, False, True])
# ScaleGMN's presets (the baselines' presets respect permutations only: their own tests).
INVARIANT = [n for n in list_presets() if get_preset(n).task != "editing" and get_preset(n).model.kind == "scalegmn"]


def small_model(name: str, **overrides):
    preset = get_preset(name)
    n_layers = min(preset.model.n_layers, 3)
    config = preset.model.override({"d_hid": 12, "n_layers": n_layers, **overrides})
    model = build_model(config, preset_spec(name), task=preset.task, n_outputs=preset_outputs(preset))
    return model.double().eval(), config


def runner(model, config):
    mask = SIGN_MASK if config.symmetry == "hetero" else None
    return lambda net: model(WeightBatch(net, sign_mask=mask))


def scales_for(config, spec, seed):
    g = torch.Generator().manual_seed(seed)
    if config.symmetry == "hetero":
        return random_mixed_scales(spec, SIGN_MASK, g)
    return random_scales(spec, g, "sign" if config.symmetry == "sign" else "positive", (B,))


@pytest.mark.parametrize("name", INVARIANT)
def test_preset_is_permutation_and_scale_invariant(name):
    model, config = small_model(name)
    spec = preset_spec(name)
    run = runner(model, config)
    for seed in range(2):
        net = random_network(spec, (B,), seed=seed)
        perms = random_permutations(spec, torch.Generator().manual_seed(10 + seed), (B,))
        q = scales_for(config, spec, 20 + seed)
        sym, ctrl = check_symmetry(run, net, lambda n, p=perms: permute_hidden(n, p))
        assert_symmetric(sym, ctrl, what=f"{name} permutation")
        sym, ctrl = check_symmetry(run, net, lambda n, q=q: scale_hidden(n, q))
        assert_symmetric(sym, ctrl, what=f"{name} {config.symmetry} scaling")


@pytest.mark.parametrize("name", ["mnist_cls/scalegmn", "cifar10/scalegmn_relu_bidir"])
def test_permutation_gmn_is_permutation_invariant_but_not_scale_invariant(name):
    model, config = small_model(name, kind="gmn")
    spec = preset_spec(name)
    run = runner(model, config)
    net = random_network(spec, (B,))
    perms = random_permutations(spec, torch.Generator().manual_seed(3), (B,))
    sym, ctrl = check_symmetry(run, net, lambda n: permute_hidden(n, perms))
    assert_symmetric(sym, ctrl, what=f"gmn {name}")
    # The GMN ignores the scaling symmetry: a valid rescaling changes its output.
    q = random_scales(spec, torch.Generator().manual_seed(4), "positive", (B,))
    scaled, _ = check_symmetry(run, net, lambda n: scale_hidden(n, q))
    assert scaled > 1e-3 * ctrl


@pytest.mark.parametrize("name", ["cifar10/scalegmn_relu_bidir", "cifar10/scalegmn_hetero_bidir"])
def test_original_shared_backward_edges_are_not_scale_invariant(name):
    """The released ScaleGMN-B feeds the forward edge features to backward messages (docs/model.md §2.6):
    a valid positive rescaling then changes the output like a non-symmetry does."""
    model, config = small_model(name, backward_edges="shared")
    spec = preset_spec(name)
    net = random_network(spec, (B,))
    sym, ctrl = check_symmetry(runner(model, config), net,
                               lambda n: scale_hidden(n, scales_for(config, spec, 5)))
    assert sym > 1e-2 * ctrl, (sym, ctrl)


def test_hetero_model_uses_each_graphs_own_group():
    """A sign flip is a symmetry of the tanh graphs only: applied to a ReLU graph it must change
    that graph's prediction, and only that one."""
    name = "cifar10/scalegmn_hetero"
    model, config = small_model(name)
    spec = preset_spec(name)
    net = random_network(spec, (B,))
    run = runner(model, config)
    flip = [-torch.ones(B, n, dtype=torch.float64) for n in spec.layout[1:-1]]
    with torch.no_grad():
        ref, out = run(net), run(scale_hidden(net, flip))
        ctrl = run(Network(spec, *_jittered(net)))
    change = (out - ref).abs().squeeze(-1) / (ctrl - ref).abs().squeeze(-1)
    assert change[SIGN_MASK].max() < 1e-6  # tanh graphs: invariant
    assert change[~SIGN_MASK].min() > 1e-3  # ReLU graph: -1 is not a positive scale


def _jittered(net):
    from scalegmn.weightspace.testing import jitter

    j = jitter(net)
    return j.weights, j.biases
