"""Lean autograd (scalegmn.nn.lean) gives plain autograd's outputs and gradients exactly."""

from __future__ import annotations

import pytest
import torch

from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.nn import lean
from scalegmn.nn.edge_update import EdgeUpdate
from scalegmn.nn.equivariant import ScaleEq
from scalegmn.nn.graph_batch import RowGroups
from scalegmn.nn.invariant import Tau
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import flatten_output, random_network

NAMES = ["mnist_cls/scalegmn", "mnist_cls/scalegmn_bidir", "cifar_inr_cls/scalegmn_bidir",
         "svhn/scalegmn_relu_bidir", "mnist_editing/scalegmn_bidir", "cifar10/scalegmn_hetero"]


def outputs_and_grads(model, batch):
    model.zero_grad()
    out = flatten_output(model(batch))
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    return out.detach(), grads


def pair(name, **overrides):
    preset = get_preset(name)
    models = []
    for flag in (False, True):
        config = preset.model.override({"d_hid": 10, "n_layers": 2, "dropout": 0.0,
                                        "lean_autograd": flag, "lean_min_mb": 0.0,
                                        **overrides})
        torch.manual_seed(0)
        models.append(build_model(config, preset_spec(name), task=preset.task,
                                  n_outputs=preset_outputs(preset)).double())
    models[1].load_state_dict(models[0].state_dict())
    return models


@pytest.mark.parametrize("name", NAMES)
def test_lean_autograd_matches_plain_autograd(name, monkeypatch):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 50)  # several chunks per block
    plain, lean_model = pair(name)
    net = random_network(preset_spec(name), (5,))
    mask = torch.tensor([True, False, True, False, False])
    batch = WeightBatch(net, sign_mask=mask if "hetero" in name else None)
    out_a, grads_a = outputs_and_grads(plain, batch)
    out_b, grads_b = outputs_and_grads(lean_model, batch)
    torch.testing.assert_close(out_b, out_a)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert (ga is None) == (gb is None) or float(gb.abs().max()) == 0.0
        if ga is not None:
            torch.testing.assert_close(gb, ga)
    # Control: the gradients are not trivially equal (a different batch changes them).
    _, grads_c = outputs_and_grads(lean_model, WeightBatch(random_network(preset_spec(name), (5,), seed=7),
                                                           sign_mask=batch.sign_mask))
    diff = max(float((gc - gb).abs().max()) for gb, gc in zip(grads_b, grads_c, strict=True)
               if gb is not None)
    assert diff > 1e-6


@pytest.mark.parametrize("tau", ["abs", "sym"])
@pytest.mark.parametrize("with_extra", [False, True])
def test_lean_functions_pass_gradcheck(tau, with_extra, monkeypatch):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 4)
    torch.manual_seed(0)
    k, d = 3, 4
    block = ScaleEq(k, d if with_extra else 0, d, Tau(k, "sign", tau, d_hid=5), d_hid=5).double()
    x = torch.randn(9, k, dtype=torch.float64, requires_grad=True)
    a = torch.randn(9, d, dtype=torch.float64, requires_grad=True) if with_extra else None
    params = lean._params(block.gamma, block.inv.tau, block.inv.phi)
    assert torch.autograd.gradcheck(
        lambda x, a, *p: lean._ScaleEqHidden.apply(block, None, None, params, x, a, None, None,
                                                  None, None, None, None, None, *p),
        (x, a, *params))
    groups = RowGroups(ranges=((0, 0), (0, 9), (9, 9)))
    torch.testing.assert_close(lean.scale_eq_hidden(block, x, a),
                               block.gamma(x) * block.inv(x, a, None))
    assert groups.size(1) == 9

    edge = EdgeUpdate(d, d, Tau(d, "sign", tau, d_hid=5), d_hid=5, layer_norm=True,
                      dropout=0.0).double()
    y = torch.randn(9, d, dtype=torch.float64, requires_grad=True)
    node_a = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    node_b = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    ia, ib = torch.randint(0, 4, (9,)), torch.randint(0, 3, (9,))
    eparams = lean._params(edge.gamma, edge.phi.norm, edge.phi.second)
    assert torch.autograd.gradcheck(
        lambda y, na, nb, *p: lean._GatedHidden.apply(edge.gamma, edge.phi, y, na, nb, ia, ib, *p),
        (y, node_a, node_b, *eparams))
    torch.testing.assert_close(lean.gated_hidden(edge.gamma, edge.phi, y, node_a, node_b, ia, ib),
                               edge.gamma(y) * edge.phi.hidden(node_a[ia] + node_b[ib]))


def test_lean_is_off_where_recompute_would_not_be_exact():
    block = ScaleEq(3, 0, 4, Tau(3, "hetero", "sym", d_hid=5), d_hid=5)
    assert not lean.lean_supported(block)
    block = ScaleEq(3, 0, 4, Tau(3, "sign", "sym", d_hid=5), d_hid=5, dropout=0.1)
    assert not lean.lean_supported(block)
    assert lean.lean_supported(ScaleEq(3, 0, 4, Tau(3, "scale"), d_hid=5))


def test_lean_min_mb_limits_lean_autograd_to_large_batches():
    preset = get_preset("mnist_cls/scalegmn")
    config = preset.model.override({"lean_min_mb": 2048.0})
    model = build_model(config, preset_spec(preset.name), task=preset.task, n_outputs=10)
    from scalegmn.models.metanetworks import as_flat_graph

    small = as_flat_graph(WeightBatch(random_network(preset_spec(preset.name), (32,))), 1.0)
    large = as_flat_graph(WeightBatch(random_network(preset_spec(preset.name), (128,))), 1.0)
    model.float()
    assert not model.use_lean(small)
    assert model.use_lean(large)
    with torch.no_grad():
        assert not model.use_lean(large)
