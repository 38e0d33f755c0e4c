"""The in-memory network representation: specs, validation, stacking."""

import pytest
import torch

from scalegmn.weightspace.network import (
    Network,
    NetworkSpec,
    cnn_zoo_spec,
    dws_siren_spec,
    nfn_siren_spec,
    stack,
    unstack,
)
from scalegmn.weightspace.testing import random_network


def test_parameter_counts_match_the_real_datasets():
    assert dws_siren_spec().num_params == 1185
    assert nfn_siren_spec().num_params == 1251
    assert cnn_zoo_spec("relu").num_params == 4970


def test_spec_rejects_inconsistent_architectures():
    with pytest.raises(ValueError, match="activations"):
        NetworkSpec((2, 3, 1), ("sine",))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        NetworkSpec((2, 3, 1), ("swish", "identity"))
    with pytest.raises(ValueError, match="kernel_size"):
        NetworkSpec((1, 2, 3), ("relu", "identity"), layer_kinds=("conv", "linear"))
    with pytest.raises(ValueError, match="before linear"):
        NetworkSpec((1, 2, 3), ("relu", "identity"), ("linear", "conv"), kernel_size=(3, 3))


def test_spec_round_trips_through_dict_and_key_is_stable():
    spec = cnn_zoo_spec("tanh")
    again = NetworkSpec.from_dict(spec.to_dict())
    assert again == spec and again.key() == spec.key()
    assert spec.key() != cnn_zoo_spec("relu").key()


def test_network_validation_names_source_and_layer():
    spec = dws_siren_spec()
    net = random_network(spec, ())
    bad = list(net.weights)
    bad[1] = torch.zeros(32, 31)
    with pytest.raises(ValueError, match=r"a/b\.pth: layer 1 weight has shape \(32, 31\)"):
        Network(spec, bad, net.biases, source="a/b.pth")


def test_non_finite_reports_the_tensor():
    net = random_network(dws_siren_spec(), ())
    assert net.non_finite() is None
    biases = list(net.biases)
    biases[2] = torch.tensor([float("nan")], dtype=torch.float64)
    assert net.replace(biases=tuple(biases)).non_finite() == "layer 2 bias"


def test_stack_unstack_round_trip_keeps_metadata():
    spec = nfn_siren_spec()
    nets = [random_network(spec, (), seed=i).replace(source=f"n{i}", label=i) for i in range(3)]
    batch = stack(nets)
    assert batch.batch_shape == (3,)
    assert batch.flat().shape == (3, spec.num_params)
    back = unstack(batch)
    for a, b in zip(nets, back, strict=True):
        assert a.source == b.source and a.label == b.label
        assert all(torch.equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))


def test_stack_refuses_mixed_architectures():
    with pytest.raises(ValueError, match="architecture differs"):
        stack([random_network(cnn_zoo_spec("relu"), ()), random_network(cnn_zoo_spec("tanh"), ())])
