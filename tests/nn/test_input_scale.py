"""Per-layer input scaling (``input_scaling="rms"``) keeps every symmetry, float64, with controls."""

from __future__ import annotations

import pytest
import torch

from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.nn.input_scale import LayerScale
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
LAYER_SIZES = (0.05, 0.02, 0.3)  # unequal per-layer magnitudes, like real INR layers


def uneven(net: Network) -> Network:
    return net.replace(weights=tuple(w * s for w, s in zip(net.weights, LAYER_SIZES, strict=True)),
                       biases=tuple(b * s * 2 for b, s in zip(net.biases, LAYER_SIZES, strict=True)))


def calibrated(name: str, spec: NetworkSpec, task: str, **overrides):
    config = get_preset(name).model.override({"d_hid": 12, "n_layers": 2, "input_scaling": "rms",
                                              **overrides})
    n_out = 0 if task == "editing" else 10
    model = build_model(config, spec, task=task, n_outputs=n_out).double().eval()
    model.input_scale.calibrate(uneven(random_network(spec, (64,), seed=99)))
    return model


def test_calibration_gives_each_layer_unit_rms():
    net = uneven(random_network(dws_siren_spec(), (64,), seed=0))
    scale = LayerScale(net.spec.n_layers)
    assert scale.is_identity
    scale.calibrate(net)
    out = scale(WeightBatch(net)).net
    for t in (*out.weights, *out.biases):
        assert float(t.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-9)
    assert scale.weight_scale.tolist() != pytest.approx(scale.bias_scale.tolist())


@pytest.mark.parametrize(
    "name, spec, kind",
    [
        ("mnist_cls/scalegmn", dws_siren_spec(), "sign"),
        ("mnist_cls/scalegmn_bidir", dws_siren_spec(), "sign"),
        ("cifar10/scalegmn_relu", RELU_SPEC, "positive"),
        ("cifar10/scalegmn_relu_bidir", RELU_SPEC, "positive"),
    ],
)
def test_calibrated_models_stay_invariant(name, spec, kind):
    model = calibrated(name, spec, "classification")
    assert not model.input_scale.is_identity
    run = lambda net: model(WeightBatch(net))  # noqa: E731
    g = torch.Generator().manual_seed(1)
    q, perms = random_scales(spec, g, kind, (B,)), random_permutations(spec, g, (B,))
    net = uneven(random_network(spec, (B,), seed=2))
    sym, ctrl = check_symmetry(run, net, lambda n: permute_hidden(scale_hidden(n, q), perms))
    assert_symmetric(sym, ctrl, what=f"{name} with input scaling")


@pytest.mark.parametrize("symmetry, spec, kind", [("sign", dws_siren_spec(), "sign"),
                                                  ("scale", RELU_SPEC, "positive")])
def test_calibrated_editing_head_stays_equivariant(symmetry, spec, kind):
    model = calibrated("mnist_editing/scalegmn", spec, "editing", symmetry=symmetry)
    run = lambda net: model(WeightBatch(net))  # noqa: E731
    g = torch.Generator().manual_seed(3)
    q, perms = random_scales(spec, g, kind, (B,)), random_permutations(spec, g, (B,))

    def act(net: Network) -> Network:
        return permute_hidden(scale_hidden(net, q), perms)

    def act_on_output(out):
        moved = act(Network(spec, out[0], out[1]))
        return moved.weights, moved.biases

    net = uneven(random_network(spec, (B,), seed=4))
    sym, ctrl = check_symmetry(run, net, act, expected=act_on_output)
    assert_symmetric(sym, ctrl, what=f"editing {symmetry} with input scaling")


@pytest.mark.parametrize("kind", ["scalegmn", "mlp"])
def test_edits_come_back_in_the_units_of_the_input(kind):
    spec = dws_siren_spec()
    model = calibrated("mnist_editing/scalegmn", spec, "editing", kind=kind)
    net = uneven(random_network(spec, (B,), seed=5))
    with torch.no_grad():
        dw, db = model(WeightBatch(net))
        scaled = model.input_scale(WeightBatch(net))
        plain = LayerScale(spec.n_layers).double()
        model.input_scale, keep = plain, model.input_scale
        raw_w, raw_b = model(scaled)  # the same weights without the scaling step
        model.input_scale = keep
    want_w, want_b = keep.unscale(raw_w, raw_b)
    for got, want in zip((*dw, *db), (*want_w, *want_b), strict=True):
        torch.testing.assert_close(got, want)
    # and the calibration matters: the raw edit differs from the one in input units
    assert (dw[0] - raw_w[0]).abs().max() > 1e-3 * dw[0].abs().max()


def test_scaling_is_not_a_no_op_and_survives_the_state_dict():
    spec = dws_siren_spec()
    model = calibrated("mnist_cls/scalegmn", spec, "classification")
    net = uneven(random_network(spec, (B,), seed=6))
    fresh = build_model(model.config, spec, task="classification", n_outputs=10).double().eval()
    fresh.load_state_dict(model.state_dict(), strict=False)
    fresh.input_scale = LayerScale(spec.n_layers).double()
    with torch.no_grad():
        assert (model(WeightBatch(net)) - fresh(WeightBatch(net))).abs().max() > 1e-4
        fresh.load_state_dict(model.state_dict())
        torch.testing.assert_close(model(WeightBatch(net)), fresh(WeightBatch(net)))


def test_calibrated_scaling_rejects_a_mixed_layout_batch():
    scale = LayerScale(3)
    scale.calibrate(uneven(random_network(dws_siren_spec(), (8,), seed=7)))
    with pytest.raises(ValueError, match="WeightBatch"):
        scale(object())
