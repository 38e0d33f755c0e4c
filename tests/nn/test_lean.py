"""Lean autograd (scalegmn.nn.lean) gives plain autograd's outputs and gradients exactly, and
runs exactly where the execution policy says (its autograd Functions are counted)."""

from __future__ import annotations

import pytest
import torch

from scalegmn.execution import ExecutionConfig
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
         "svhn/scalegmn_relu_bidir", "mnist_editing/scalegmn_bidir"]
# Hetero blocks (two φ per ScaleInv) are outside lean_supported: lean never runs there.
PLAIN_ONLY = ["cifar10/scalegmn_hetero", "cifar10/scalegmn_hetero_bidir"]


def outputs_and_grads(model, batch):
    model.zero_grad()
    out = flatten_output(model(batch))
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    return out.detach(), grads


def pair(name):
    """(plain, lean) models of one preset with the same parameters."""
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 10, "n_layers": 2, "dropout": 0.0})
    models = []
    for memory in ("plain", "lean"):
        torch.manual_seed(0)
        models.append(build_model(config, preset_spec(name), task=preset.task,
                                  n_outputs=preset_outputs(preset),
                                  execution=ExecutionConfig(memory=memory)).double())
    models[1].load_state_dict(models[0].state_dict())
    return models


@pytest.mark.parametrize("name", NAMES)
def test_lean_autograd_matches_plain_autograd(name, monkeypatch, lean_calls):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 50)  # several chunks per block
    plain, lean_model = pair(name)
    batch = WeightBatch(random_network(preset_spec(name), (5,)))
    out_a, grads_a = outputs_and_grads(plain, batch)
    assert lean_calls == {"_ScaleEqHidden": 0, "_GatedHidden": 0}  # plain ran plain
    out_b, grads_b = outputs_and_grads(lean_model, batch)
    # Lean ran: every layer's message (and update) blocks, and the edge update of layer 1.
    assert lean_calls["_ScaleEqHidden"] >= 2 * 2
    assert lean_calls["_GatedHidden"] >= 1
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


@pytest.mark.parametrize("name", PLAIN_ONLY)
def test_hetero_runs_plain_autograd_even_where_lean_is_asked(name, lean_calls):
    plain, lean_model = pair(name)
    mask = torch.tensor([True, False, True, False, False])
    batch = WeightBatch(random_network(preset_spec(name), (5,)), sign_mask=mask)
    out_a, grads_a = outputs_and_grads(plain, batch)
    out_b, grads_b = outputs_and_grads(lean_model, batch)
    assert lean_calls == {"_ScaleEqHidden": 0, "_GatedHidden": 0}
    torch.testing.assert_close(out_b, out_a)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert (ga is None) == (gb is None)


@pytest.mark.parametrize(("memory", "lean_min_mb", "ran"),
                         [("auto", 0.0, True), ("auto", 1e6, False), ("lean", 1e6, True),
                          ("plain", 0.0, False), ("checkpoint", 0.0, False)])
def test_the_policy_decides_where_lean_runs(memory, lean_min_mb, ran, lean_calls):
    name = "mnist_cls/scalegmn"
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 8, "n_layers": 2})
    model = build_model(config, preset_spec(name), task=preset.task, n_outputs=10,
                        execution=ExecutionConfig(memory=memory, lean_min_mb=lean_min_mb))
    batch = WeightBatch(random_network(preset_spec(name), (3,), dtype=torch.float32))
    with torch.no_grad():
        model(batch)
    assert lean_calls["_ScaleEqHidden"] == 0  # never without gradients
    model(batch).sum().backward()
    assert (lean_calls["_ScaleEqHidden"] > 0) == ran


@pytest.mark.parametrize("tau", ["abs", "sym"])
@pytest.mark.parametrize("with_extra", [False, True])
def test_lean_functions_pass_gradcheck(tau, with_extra, monkeypatch):
    monkeypatch.setattr(lean, "CHUNK_ROWS", 4)
    torch.manual_seed(0)
    k, d = 3, 4
    block = ScaleEq(k, d if with_extra else 0, d, Tau(k, "sign", tau, d_hid=5), d_hid=5).double()
    x = torch.randn(9, k, dtype=torch.float64, requires_grad=True)
    a = torch.randn(9, d, dtype=torch.float64, requires_grad=True) if with_extra else None
    rows = lean.ScaleEqRows(block, lean._params(block.gamma, block.inv.tau, block.inv.phi))
    assert torch.autograd.gradcheck(
        lambda x, a, *p: lean._ScaleEqHidden.apply(rows, x, a, None, None, None, *p),
        (x, a, *rows.params))
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
    model = build_model(preset.model, preset_spec(preset.name), task=preset.task, n_outputs=10,
                        execution=ExecutionConfig(lean_min_mb=2048.0))
    from scalegmn.models.metanetworks import as_flat_graph

    small = as_flat_graph(WeightBatch(random_network(preset_spec(preset.name), (32,))), 1.0)
    large = as_flat_graph(WeightBatch(random_network(preset_spec(preset.name), (128,))), 1.0)
    model.float()
    assert not model.use_lean(small)
    assert model.use_lean(large)
    with torch.no_grad():
        assert not model.use_lean(large)
