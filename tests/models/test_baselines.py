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
