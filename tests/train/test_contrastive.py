"""The embedding task's pieces: encoders' invariance (float64, with controls), the positives,
InfoNCE, the retrieval metrics on hand-made cases, and the ridge probe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scalegmn.models.catalogue import preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.train.contrastive import (
    embed,
    info_nce,
    layer_noise,
    positive_views,
    retrieval_report,
)
from scalegmn.train.metrics import retrieval_metrics, ridge_probe
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.symmetry import permute_hidden, random_permutations
from scalegmn.weightspace.testing import assert_symmetric, check_symmetry, random_network

B = 4
EMBED_DIM = 8

#: (row of table 5, preset, model overrides): every encoder of the table, on a sine (INR) and a
#: ReLU (CNN) zoo.
ENCODERS = [
    ("scalegmn", "mnist_cls/scalegmn", {}),
    ("scalegmn_b", "mnist_cls/scalegmn_bidir", {}),
    ("scalegmn", "cifar10/scalegmn_relu", {}),
    ("scalegmn_b", "cifar10/scalegmn_relu_bidir", {}),
    ("gmn", "mnist_cls/scalegmn", {"kind": "gmn"}),
    ("gmn", "cifar10/scalegmn_relu", {"kind": "gmn"}),
    ("mlp", "mnist_cls/scalegmn", {"kind": "mlp"}),
]


def encoder(preset: str, overrides: dict):
    p = get_preset(preset)
    n_layers = min(p.model.n_layers, 3)
    config = p.model.override({"d_hid": 12, "n_layers": n_layers, "embed_dim": EMBED_DIM, **overrides})
    model = build_model(config, preset_spec(preset), task="embedding", n_outputs=EMBED_DIM)
    return model.double().eval()


def _run(model):
    return lambda net: embed(model, WeightBatch(net))


@pytest.mark.parametrize(("row", "preset", "overrides"), ENCODERS, ids=[f"{r}-{p}" for r, p, _ in ENCODERS])
def test_encoder_embedding_under_the_positives_symmetry(row, preset, overrides):
    """Invariant encoders give the same unit embedding to a network and to it at a random point
    of its symmetry orbit (the training positive without its noise); a jitter (not a symmetry)
    changes it. The MLP on flattened weights is the control model: the symmetry changes its
    embedding as much as a jitter does at least."""
    model = encoder(preset, overrides)
    spec = preset_spec(preset)
    run = _run(model)
    for seed in range(2):
        net = random_network(spec, (B,), seed=seed)
        g = torch.Generator().manual_seed(100 + seed)
        sym, ctrl = check_symmetry(run, net, lambda n, g=g: positive_views(WeightBatch(n), 0.0, g).net)
        if row == "gmn":  # permutation-invariant only: check the permutation part alone
            perms = random_permutations(spec, torch.Generator().manual_seed(seed), (B,))
            sym, ctrl = check_symmetry(run, net, lambda n, p=perms: permute_hidden(n, p))
        if row == "mlp":
            assert sym > ctrl > 1e-6, f"the MLP encoder looked invariant: {sym:.2e} vs control {ctrl:.2e}"
        else:
            assert_symmetric(sym, ctrl, what=f"{row} {preset} embedding")


def test_gmn_encoder_is_not_scale_invariant_on_relu_zoos():
    model = encoder("cifar10/scalegmn_relu", {"kind": "gmn"})
    net = random_network(preset_spec("cifar10/scalegmn_relu"), (B,))
    g = torch.Generator().manual_seed(3)
    sym, ctrl = check_symmetry(_run(model), net, lambda n: positive_views(WeightBatch(n), 0.0, g).net)
    assert sym > 1e-3 * ctrl  # the positive's ReLU scaling moves the GMN's embedding


def test_positive_noise_is_relative_to_each_layer_and_changes_the_network():
    net = random_network(preset_spec("mnist_cls/scalegmn"), (B,), seed=2)
    noisy = layer_noise(net, 0.1, torch.Generator().manual_seed(0))
    for a, b in zip(net.weights + net.biases, noisy.weights + noisy.biases, strict=True):
        rel = (b - a).pow(2).flatten(1).mean(1).sqrt() / a.pow(2).flatten(1).mean(1).sqrt()
        assert torch.all((rel > 0.02) & (rel < 0.3))  # 0.1 of the RMS, per network and layer
    assert layer_noise(net, 0.0) is net


def test_positives_are_drawn_from_the_generator_only():
    batch = WeightBatch(random_network(preset_spec("cifar10/scalegmn_relu"), (B,)))
    a = positive_views(batch, 0.05, torch.Generator().manual_seed(7))
    state = torch.get_rng_state()
    b = positive_views(batch, 0.05, torch.Generator().manual_seed(7))
    assert torch.equal(state, torch.get_rng_state())  # evaluation leaves the training RNG alone
    assert all(torch.equal(x, y) for x, y in zip(a.net.weights, b.net.weights, strict=True))


def test_info_nce_bounds():
    z = torch.eye(6, dtype=torch.float64)
    assert float(info_nce(z, z, 0.01)) < 1e-10  # matched, orthogonal pairs: no loss
    same = torch.nn.functional.normalize(torch.ones(6, 3, dtype=torch.float64), dim=-1)
    assert float(info_nce(same, same, 0.1)) == pytest.approx(math.log(6))  # collapsed: chance


# --- retrieval metrics on hand-made cases ------------------------------------------------------


def test_recall_and_mrr_of_hand_made_rankings():
    scores = torch.tensor([[0.9, 0.1, 0.5],   # relevant 0 ranked first
                           [0.9, 0.1, 0.5],   # relevant 1 ranked third
                           [0.9, 0.8, 0.5]])  # relevant 2 ranked third
    m = retrieval_metrics(scores, torch.eye(3, dtype=torch.bool), ks=(1, 2, 3))
    assert m["recall_at_1"] == pytest.approx(1 / 3)
    assert m["recall_at_2"] == pytest.approx(1 / 3)
    assert m["recall_at_3"] == pytest.approx(1.0)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)


def test_ties_count_against_the_query_so_a_collapsed_encoder_ranks_last():
    m = retrieval_metrics(torch.ones(4, 4), torch.eye(4, dtype=torch.bool), ks=(1,))
    assert m["recall_at_1"] == 0.0 and m["mrr"] == pytest.approx(1 / 4)


def test_excluded_items_are_not_ranked_and_queries_without_relevant_items_are_left_out():
    scores = torch.tensor([[1.0, 0.2, 0.9], [0.3, 1.0, 0.1], [0.9, 0.1, 1.0]])
    same = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.bool)
    m = retrieval_metrics(scores, same, exclude=torch.eye(3, dtype=torch.bool), ks=(1,))
    # query 1 has no other member of its class; queries 0 and 2 find each other first
    assert m == {"recall_at_1": 1.0, "mrr": 1.0}
    empty = retrieval_metrics(scores, torch.zeros(3, 3, dtype=torch.bool))
    assert all(math.isnan(v) for v in empty.values())


def test_retrieval_report_has_class_metrics_only_with_classes():
    z = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=torch.float64), dim=-1)
    with_classes = retrieval_report(z, z, torch.tensor([0, 0, 1]))
    # net 2 is alone in its class (left out); nets 0 and 1 are each other's nearest
    assert with_classes["recall_at_1"] == 1.0 and with_classes["class_recall_at_1"] == 1.0
    swapped = retrieval_report(z, z, torch.tensor([0, 1, 0]))
    assert swapped["class_recall_at_1"] == 0.0  # 0's nearest is 1, 2's nearest is 1: both of the other class
    assert "class_mrr" not in retrieval_report(z, z, None)


def test_ridge_probe_recovers_a_linear_target():
    rng = np.random.default_rng(0)
    w = rng.normal(size=5)
    parts = []
    for n in (80, 20, 30):
        x = rng.normal(size=(n, 5))
        parts.append((x, x @ w + 0.3))
    m = ridge_probe(*parts)
    assert m["probe_r2"] > 0.999 and m["probe_spearman"] > 0.999 and m["probe_mse"] < 1e-3


# --- interpolation after the encoder's alignment ------------------------------------------------


@pytest.mark.parametrize("preset", ["mnist_cls/scalegmn", "cifar10/scalegmn_relu"])
def test_encoder_alignment_undoes_a_symmetry_exactly(preset):
    """The encoder's neuron matching plus the scaling fix map a network's symmetry copy back onto
    it (float64); the control: without alignment the copy is far from it."""
    from scalegmn.train.interpolation import align
    from scalegmn.weightspace.symmetry import random_symmetry

    model = encoder(preset, {})
    spec = preset_spec(preset)
    a = random_network(spec, (B,), seed=5)
    b = random_symmetry(a, torch.Generator().manual_seed(6))
    aligned = align(model, a, b)
    for x, y in zip(a.weights + a.biases, aligned.weights + aligned.biases, strict=True):
        assert torch.allclose(x, y, atol=1e-9)
    assert max(float((x - z).abs().max()) for x, z in zip(a.weights, b.weights, strict=True)) > 0.1


def test_interpolation_metrics_rank_naive_aligned_and_oracle_midpoints():
    from scalegmn.data.split_protocol import MemorySplit
    from scalegmn.train.interpolation import interpolation_metrics

    model = encoder("mnist_cls/scalegmn", {})
    net = random_network(preset_spec("mnist_cls/scalegmn"), (6,), seed=7)
    m = interpolation_metrics(model, MemorySplit(net), noise=0.0)
    # no noise: the oracle midpoint is the network itself, and the encoder's alignment finds it
    assert m["interp_oracle_mse"] == 0.0 and m["interp_aligned_mse"] < 1e-18 < m["interp_naive_mse"]
    assert interpolation_metrics(encoder("mnist_cls/scalegmn", {"kind": "mlp"}), MemorySplit(net), 0.1) == {}
