"""The editing head is equivariant: (ΔW, Δb) transform exactly like (W, b), float64."""

from __future__ import annotations

import pytest
import torch

from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network, NetworkSpec, dws_siren_spec
from scalegmn.weightspace.symmetry import (
    permute_hidden,
    random_permutations,
    random_scales,
    scale_hidden,
)
from scalegmn.weightspace.testing import assert_symmetric, check_symmetry, random_network

B = 3
RELU_SPEC = NetworkSpec((2, 10, 8, 1), ("relu", "relu", "identity"))


def editing_model(name: str, spec: NetworkSpec, **overrides):
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 12, "n_layers": 3, **overrides})
    return build_model(config, spec, task="editing", n_outputs=0).double().eval()


def group_action(spec, q, perms):
    def act(net: Network) -> Network:
        return permute_hidden(scale_hidden(net, q), perms)

    def act_on_output(out):
        moved = act(Network(spec, out[0], out[1]))
        return moved.weights, moved.biases

    return act, act_on_output


@pytest.mark.parametrize("name", ["mnist_editing/scalegmn", "mnist_editing/scalegmn_bidir"])
@pytest.mark.parametrize("symmetry", ["sign", "scale"])
def test_editing_head_is_equivariant(name, symmetry):
    spec = dws_siren_spec() if symmetry == "sign" else RELU_SPEC
    model = editing_model(name, spec, symmetry=symmetry)
    run = lambda net: model(WeightBatch(net))  # noqa: E731
    for seed in range(2):
        g = torch.Generator().manual_seed(seed)
        kind = "sign" if symmetry == "sign" else "positive"
        act, act_out = group_action(spec, random_scales(spec, g, kind, (B,)),
                                    random_permutations(spec, g, (B,)))
        net = random_network(spec, (B,), seed=seed)
        sym, ctrl = check_symmetry(run, net, act, expected=act_out)
        assert_symmetric(sym, ctrl, what=f"{name} {symmetry}")


def test_editing_output_has_the_shapes_of_the_input_and_starts_small():
    spec = dws_siren_spec()
    model = editing_model("mnist_editing/scalegmn", spec)
    net = random_network(spec, (B,))
    dw, db = model(WeightBatch(net))
    assert [t.shape for t in dw] == [t.shape for t in net.weights]
    assert [t.shape for t in db] == [t.shape for t in net.biases]
    # The learned per-layer scales start at out_scale = 0.01.
    assert torch.allclose(model.head.alpha, torch.full_like(model.head.alpha, 0.01))
