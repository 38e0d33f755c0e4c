"""Metrics and editing targets against independent definitions."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import kendalltau

from scalegmn.train.editing import apply_delta, dilate, per_image_mse, render
from scalegmn.train.metrics import classification_metrics, generalization_metrics, is_better
from scalegmn.weightspace.network import Network, dws_siren_spec


def test_dilation_is_a_3x3_max_filter():
    img = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    padded = torch.nn.functional.pad(img, (1, 1, 1, 1), value=float("-inf"))
    expected = torch.stack(
        [padded[..., i : i + 28, j : j + 28] for i in range(3) for j in range(3)]
    ).amax(dim=0)
    assert torch.equal(dilate(img), expected)
    # control: a single bright pixel grows to a 3x3 block, it is not kept as is
    dot = torch.zeros(1, 1, 28, 28)
    dot[0, 0, 5, 7] = 1.0
    assert dilate(dot).sum() == 9 and dilate(dot)[0, 0, 4:7, 6:9].eq(1).all()


def test_zero_edit_renders_the_original():
    spec = dws_siren_spec()
    gen = torch.Generator().manual_seed(0)
    ws = tuple(torch.randn(2, *spec.weight_shape(i), generator=gen, dtype=torch.float64) * 0.3 for i in range(spec.n_layers))
    bs = tuple(torch.randn(2, *spec.bias_shape(i), generator=gen, dtype=torch.float64) * 0.1 for i in range(spec.n_layers))
    net = Network(spec, ws, bs)
    zero = apply_delta(net, tuple(torch.zeros_like(w) for w in ws), tuple(torch.zeros_like(b) for b in bs))
    assert torch.equal(render(zero, (28, 28)), render(net, (28, 28)))
    nudged = apply_delta(net, tuple(0.1 * torch.ones_like(w) for w in ws), tuple(torch.zeros_like(b) for b in bs))
    assert per_image_mse(render(nudged, (28, 28)), render(net, (28, 28))).min() > 1e-6


def test_generalization_metrics_match_scipy_and_definitions():
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(50, generator=gen, dtype=torch.float64)
    p = (t + 0.1 * torch.randn(50, generator=gen, dtype=torch.float64)).round(decimals=1)  # ties
    m = generalization_metrics(p, t)
    assert m["kendall_tau"] == pytest.approx(kendalltau(t.numpy(), p.numpy()).statistic)
    assert m["mae"] == pytest.approx(float((p - t).abs().mean()))
    assert m["loss"] == pytest.approx(float(((p - t) ** 2).mean()))
    r2 = 1 - ((p - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    assert m["r2"] == pytest.approx(float(r2))
    assert generalization_metrics(t, t)["kendall_tau"] == pytest.approx(1.0)
    assert generalization_metrics(-t, t)["kendall_tau"] == pytest.approx(-1.0)


def test_classification_metrics():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 1, 1, 1])
    m = classification_metrics(logits, y)
    assert m["accuracy"] == 0.75
    assert m["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)))


def test_selection_rules():
    assert is_better("classification", 0.5, 0.5)  # >=: later ties win
    assert not is_better("classification", 0.4, 0.5)
    assert is_better("generalization", 0.9, 0.9)
    assert not is_better("editing", 0.02, 0.02)  # <: ties keep the earlier
    assert is_better("editing", 0.01, 0.02)
    assert not is_better("classification", float("nan"), None)
