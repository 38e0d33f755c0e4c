"""Phase/sign canonicalization: function preservation, idempotence, orbit invariance, controls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scalegmn.data.canonicalize import (
    canonicalize,
    canonicalize_table,
    hidden_bias_max,
    render_difference,
)
from scalegmn.data.network_set import NetworkSet
from scalegmn.errors import DataError
from scalegmn.weightspace.functional import render
from scalegmn.weightspace.network import Network, cnn_zoo_spec, dws_siren_spec, nfn_siren_spec
from scalegmn.weightspace.symmetry import scale_hidden


def random_siren(spec, batch=4, bias_scale=1.0, seed=0) -> Network:
    """Float64 SIRENs with SIREN-like weights and large biases (many periods P = pi/30)."""
    g = torch.Generator().manual_seed(seed)
    weights, biases = [], []
    for i in range(spec.n_layers):
        fan_in = spec.layout[i]
        bound = 1 / fan_in if i == 0 else math.sqrt(6 / fan_in) / 30
        weights.append((torch.rand(batch, *spec.weight_shape(i), generator=g, dtype=torch.float64) * 2 - 1) * bound)
        biases.append((torch.rand(batch, *spec.bias_shape(i), generator=g, dtype=torch.float64) * 2 - 1) * bias_scale)
    return Network(spec, tuple(weights), tuple(biases))


def max_render_diff(a: Network, b: Network) -> float:
    shape = (28, 28) if a.spec.layout[-1] == 1 else (32, 32)
    return float((render(a, shape) - render(b, shape)).abs().max())


def assert_same_params(a: Network, b: Network, atol=1e-12) -> None:
    assert torch.allclose(a.flat(), b.flat(), atol=atol, rtol=0)


def t1(net: Network, k: int, layer: int, neuron: int) -> Network:
    """b += 2kP on one neuron (a period of sin(30 z))."""
    biases = [b.clone() for b in net.biases]
    biases[layer][..., neuron] += 2 * k * math.pi / 30
    return net.replace(biases=tuple(biases))


def t2(net: Network, layer: int, neuron: int, negate_outgoing: bool = True) -> Network:
    """b += P with the outgoing weights negated (exact); without the negation it is a control."""
    biases = [b.clone() for b in net.biases]
    weights = [w.clone() for w in net.weights]
    biases[layer][..., neuron] += math.pi / 30
    if negate_outgoing:
        weights[layer + 1][..., :, neuron] *= -1
    return net.replace(weights=tuple(weights), biases=tuple(biases))


def t3(net: Network, generator) -> Network:
    q = [torch.where(torch.rand(b.shape, generator=generator) < 0.5, -1.0, 1.0).double() for b in net.biases[:-1]]
    return scale_hidden(net, q)


@pytest.mark.parametrize("spec_fn", [dws_siren_spec, nfn_siren_spec])
@pytest.mark.parametrize("mode", ["phase", "phase+sign"])
def test_function_preserved_and_biases_in_range(spec_fn, mode):
    net = random_siren(spec_fn())
    out = canonicalize(net, mode)
    assert max_render_diff(net, out) < 1e-9
    period = math.pi / 30
    for b in out.biases[:-1]:
        assert b.abs().max() <= period / 2 + 1e-12
        if mode == "phase+sign":
            assert b.min() >= 0
    # Input weights of the first layer, the output bias: untouched by the phase map.
    assert torch.equal(out.biases[-1], net.biases[-1])
    assert not torch.allclose(out.flat(), net.flat())  # it did something on these biases


@pytest.mark.parametrize("mode", ["phase", "phase+sign"])
def test_idempotent(mode):
    net = random_siren(nfn_siren_spec(), seed=1)
    once = canonicalize(net, mode)
    assert_same_params(canonicalize(once, mode), once)


def test_orbit_invariance_t1_t2():
    net = random_siren(dws_siren_spec(), seed=2)
    moved = t2(t1(t1(net, 3, 0, 5), -2, 1, 7), 1, 11)
    moved = t2(moved, 0, 4)
    assert max_render_diff(net, moved) < 1e-9  # the moves are symmetries
    for mode in ("phase", "phase+sign"):
        assert_same_params(canonicalize(moved, mode), canonicalize(net, mode))


def test_sign_orbit_invariant_only_with_phase_sign():
    g = torch.Generator().manual_seed(3)
    net = random_siren(nfn_siren_spec(), seed=3)
    flipped = t3(net, g)
    assert max_render_diff(net, flipped) < 1e-9
    assert_same_params(canonicalize(flipped, "phase+sign"), canonicalize(net, "phase+sign"))
    # phase alone commutes with T3 but does not remove it.
    assert not torch.allclose(canonicalize(flipped, "phase").flat(), canonicalize(net, "phase").flat())


def test_control_shift_without_outgoing_flip_changes_function():
    net = random_siren(dws_siren_spec(), seed=4)
    control = t2(net, 0, 3, negate_outgoing=False)
    assert max_render_diff(net, control) > 1e-3
    # ...and the canonical forms differ, so canonicalization is not a constant map.
    assert not torch.allclose(canonicalize(control, "phase").flat(), canonicalize(net, "phase").flat())


def test_render_difference_catches_a_wrong_map():
    net = random_siren(dws_siren_spec(), seed=5)
    wrong = t2(net, 1, 0, negate_outgoing=False)
    diff = render_difference(net, wrong)
    assert diff.shape == (4,) and float(diff.max()) > 1e-3


def _table(net: Network) -> NetworkSet:
    n = net.batch_shape[0]
    return NetworkSet(
        net.spec,
        [w.float().numpy() for w in net.weights],
        [b.float().numpy() for b in net.biases],
        {"source": np.array([f"net{i}.pth" for i in range(n)]), "label": np.zeros(n, dtype=np.int64)},
        attrs={"dataset": "test"},
    )


def test_canonicalize_table_float32_within_tolerance():
    table = _table(random_siren(nfn_siren_spec(), batch=16, seed=6))
    out, summary = canonicalize_table(table, "phase+sign")
    assert summary["max_render_difference"] <= 1e-4
    assert summary["changed_networks"] == 16
    assert max(summary["max_abs_hidden_bias_after"]) <= math.pi / 60 + 1e-6


def test_none_reports_max_bias_and_rejects_large_biases():
    small = _table(random_siren(dws_siren_spec(), bias_scale=0.5))
    out, summary = canonicalize_table(small, "none")
    assert out is small and summary["original_script_is_identity"]
    assert len(summary["max_abs_hidden_bias_before"]) == 2
    big = _table(random_siren(dws_siren_spec(), bias_scale=3.0))
    with pytest.raises(DataError, match="canonicalize: phase"):
        canonicalize_table(big, "none")


def test_phase_on_relu_cnn_is_refused():
    spec = cnn_zoo_spec("relu")
    net = Network(spec, tuple(torch.zeros(1, *spec.weight_shape(i)) for i in range(4)),
                  tuple(torch.zeros(1, *spec.bias_shape(i)) for i in range(4)))
    with pytest.raises(ValueError, match="sine INR"):
        canonicalize(net, "phase")
    assert hidden_bias_max(net) == [0.0, 0.0, 0.0]


def test_canonicalize_file_streams_blocks_like_the_in_memory_path(tmp_path):
    import json

    from scalegmn.data.canonicalize import canonicalize_file
    from scalegmn.data.network_set import read_network_set, write_network_set

    table = _table(random_siren(nfn_siren_spec(), batch=13, seed=7))
    write_network_set(tmp_path / "w.h5", table)
    summary = canonicalize_file(tmp_path / "w.h5", tmp_path / "c.h5", tmp_path / "c.json", mode="phase", block=5)
    expect, _ = canonicalize_table(table, "phase")
    got = read_network_set(tmp_path / "c.h5")
    assert all(np.array_equal(a, b) for a, b in zip(got.weights, expect.weights, strict=True))
    assert got.attrs["canonicalize"] == "phase" and got.columns["source"][3] == "net3.pth"
    assert json.loads((tmp_path / "c.json").read_text()) == summary
    assert summary["n_networks"] == 13 and summary["max_render_difference"] <= 1e-4 and summary["table_sha256"]
    big = _table(random_siren(dws_siren_spec(), bias_scale=3.0))
    write_network_set(tmp_path / "big.h5", big)
    with pytest.raises(DataError, match="pi/2"):
        canonicalize_file(tmp_path / "big.h5", tmp_path / "o.h5", tmp_path / "o.json", mode="none")
    assert not (tmp_path / "o.h5").exists() and not list(tmp_path.glob(".o.h5.*"))  # no temporary left
