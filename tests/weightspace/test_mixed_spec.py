"""Architectures that mix activations per layer and carry residual connections (CNN Wild Park)."""

import pytest
import torch
import torch.nn.functional as F

from scalegmn.weightspace.functional import cnn_forward
from scalegmn.weightspace.network import Network, NetworkSpec, scale_kind


def _spec(residual=(-1, -1, 0, 1, -1)):
    return NetworkSpec(
        (3, 4, 6, 5, 8, 10),
        ("relu", "gelu", "tanh", "leaky_relu", "identity"),
        layer_kinds=("conv",) * 4 + ("linear",),
        kernel_size=(3, 3),
        conv_padding=1,
        residual=residual,
    )


def _random(spec, gen, batch=()):
    ws = tuple(torch.randn(*batch, *spec.weight_shape(i), generator=gen, dtype=torch.float64) * 0.5
               for i in range(spec.n_layers))
    bs = tuple(torch.randn(*batch, *spec.bias_shape(i), generator=gen, dtype=torch.float64) * 0.1
               for i in range(spec.n_layers))
    return Network(spec, ws, bs)


def _reference(spec, net, x):
    """The Wild Park rule written out per layer (docs/datasets.md §5.2), one network."""
    acts = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh,
            "leaky_relu": F.leaky_relu, "identity": lambda z: z, "sigmoid": torch.sigmoid}
    outs, h = [], x
    for i in range(spec.n_layers - 1):
        z = F.conv2d(h, net.weights[i], net.biases[i], padding=spec.conv_padding)
        j = spec.residual[i] if spec.residual else -1
        if j >= 0:
            m = min(z.shape[1], outs[j].shape[1])
            z = torch.cat([z[:, :m] + outs[j][:, :m], z[:, m:]], dim=1)
        h = acts[spec.activations[i]](z)
        outs.append(h)
    return F.linear(h.mean(dim=(-2, -1)), net.weights[-1], net.biases[-1])


def test_residual_forward_matches_the_per_layer_rule_and_depends_on_the_connection():
    gen = torch.Generator().manual_seed(0)
    spec = _spec()
    batch = _random(spec, gen, (3,))
    x = torch.randn(5, 3, 7, 7, generator=gen, dtype=torch.float64)
    got = cnn_forward(spec, batch.weights, batch.biases, x.expand(3, *x.shape))
    for k in range(3):
        one = Network(spec, tuple(w[k] for w in batch.weights), tuple(b[k] for b in batch.biases))
        torch.testing.assert_close(got[k], _reference(spec, one, x))
    # Control: the same weights without the residual connections compute something else.
    plain = NetworkSpec(**{**spec.to_dict(), "residual": ()})
    without = cnn_forward(plain, batch.weights, batch.biases, x.expand(3, *x.shape))
    assert (without - got).abs().max() > 1e-3


def test_spec_validation_names_what_to_fix():
    with pytest.raises(ValueError, match="before"):
        _spec(residual=(-1, -1, 1, -1, -1))  # the layer right before: not a residual
    with pytest.raises(ValueError, match="conv layers only"):
        _spec(residual=(-1, -1, -1, -1, 2))
    with pytest.raises(ValueError, match="spatial size"):
        NetworkSpec((3, 4, 4, 4, 10), ("relu",) * 3 + ("identity",), layer_kinds=("conv",) * 3 + ("linear",),
                    kernel_size=(3, 3), conv_stride=2, residual=(-1, -1, 0, -1))
    assert _spec(residual=(-1,) * 5).residual == ()  # all -1 is "no residual"


def test_spec_round_trips_and_keeps_old_keys():
    spec = _spec()
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    assert spec.residual_pairs() == ((0, 2, 4), (1, 3, 6))
    assert not spec.is_uniform
    plain = NetworkSpec((2, 8, 1), ("relu", "identity"))
    assert "residual" not in plain.to_dict() and plain.is_uniform


def test_scale_kind_per_activation():
    assert [scale_kind(a) for a in ("sine", "tanh", "relu", "leaky_relu", "identity", "gelu", "sigmoid")] == [
        "sign", "sign", "positive", "positive", "positive", "none", "none"]
