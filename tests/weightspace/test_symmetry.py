"""Symmetry transforms compute the same function (float64), and non-symmetries do not."""

from __future__ import annotations

import pytest
import torch

from scalegmn.weightspace.functional import cnn_forward, mlp_forward, render
from scalegmn.weightspace.network import (
    Network,
    NetworkSpec,
    cnn_zoo_spec,
    dws_siren_spec,
    nfn_siren_spec,
)
from scalegmn.weightspace.symmetry import (
    permute_hidden,
    random_mixed_scales,
    random_permutations,
    random_scales,
    random_symmetry,
    scale_hidden,
    scale_kind,
)

B = 3


def random_net(spec: NetworkSpec, batch=(B,), scale: float = 0.5) -> Network:
    g = torch.Generator().manual_seed(1)
    w = [torch.randn(*batch, *spec.weight_shape(i), generator=g, dtype=torch.float64) * scale
         for i in range(spec.n_layers)]
    b = [torch.randn(*batch, *spec.bias_shape(i), generator=g, dtype=torch.float64) * scale
         for i in range(spec.n_layers)]
    return Network(spec, w, b)


def mlp_out(net: Network) -> torch.Tensor:
    n0 = net.spec.layout[0]
    x = torch.linspace(-1, 1, 20 * n0, dtype=torch.float64).reshape(20, n0)
    return mlp_forward(net.spec, net.weights, net.biases, x)


def cnn_out(net: Network) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    images = torch.randn(net.batch_shape[0], 4, 1, 28, 28, generator=g, dtype=torch.float64)
    return cnn_forward(net.spec, net.weights, net.biases, images)


def assert_same_function(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def assert_changes(a: torch.Tensor, b: torch.Tensor) -> None:
    assert (a - b).abs().max() > 1e-3 * a.abs().max(), "a non-symmetry left the function unchanged"


def rows_only_permutation(net: Network, perms) -> Network:
    """CONTROL: permute rows of W_l and b_l without the matching columns of W_{l+1}."""
    w, b = list(net.weights), list(net.biases)
    w[0] = torch.stack([w[0][k][perms[0][k]] for k in range(B)])
    b[0] = torch.stack([b[0][k][perms[0][k]] for k in range(B)])
    return net.replace(weights=tuple(w), biases=tuple(b))


MLP_SPECS = {
    "siren-dws": dws_siren_spec(),
    "siren-nfn": nfn_siren_spec(),
    "relu-mlp": NetworkSpec((3, 7, 5, 2), ("relu", "relu", "identity")),
    "tanh-mlp": NetworkSpec((3, 7, 5, 4, 2), ("tanh", "tanh", "tanh", "identity")),
}


@pytest.mark.parametrize("name", sorted(MLP_SPECS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_symmetries_preserve_function(name, seed):
    spec = MLP_SPECS[name]
    net = random_net(spec)
    g = torch.Generator().manual_seed(seed)
    perms = random_permutations(spec, g, (B,))
    kind = scale_kind(spec.hidden_activation)
    q = random_scales(spec, g, kind, (B,))
    ref = mlp_out(net)
    assert_same_function(mlp_out(permute_hidden(net, perms)), ref)
    assert_same_function(mlp_out(scale_hidden(net, q)), ref)
    assert_same_function(mlp_out(random_symmetry(net, g)), ref)
    # CONTROL: an uncoupled permutation (rows only) changes the function.
    assert_changes(mlp_out(rows_only_permutation(net, perms)), ref)


def test_siren_render_is_invariant_and_sign_is_the_only_valid_scale():
    spec = dws_siren_spec()
    net = random_net(spec, scale=0.05)
    g = torch.Generator().manual_seed(3)
    ref = render(net, (8, 8))
    q = random_scales(spec, g, "sign", (B,))
    assert_same_function(render(scale_hidden(net, q), (8, 8)), ref)
    # CONTROL: a non-±1 scale is not a symmetry of sine layers.
    q_bad = random_scales(spec, g, "positive", (B,), low=1.5, high=2.0)
    assert_changes(render(scale_hidden(net, q_bad), (8, 8)), ref)


def test_relu_negative_scale_is_not_a_symmetry():
    spec = MLP_SPECS["relu-mlp"]
    net = random_net(spec)
    g = torch.Generator().manual_seed(4)
    ref = mlp_out(net)
    q_neg = [-x for x in random_scales(spec, g, "positive", (B,))]
    assert_changes(mlp_out(scale_hidden(net, q_neg)), ref)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_cnn_channel_symmetries_preserve_function(activation):
    spec = cnn_zoo_spec(activation)
    net = random_net(spec, scale=0.3)
    g = torch.Generator().manual_seed(5)
    ref = cnn_out(net)
    perms = random_permutations(spec, g, (B,))
    assert_same_function(cnn_out(permute_hidden(net, perms)), ref)
    q = random_scales(spec, g, scale_kind(activation), (B,))
    assert_same_function(cnn_out(scale_hidden(net, q)), ref)
    # CONTROLS: rows-only permutation; the "other" group (negative for ReLU, non-±1 for tanh).
    assert_changes(cnn_out(rows_only_permutation(net, perms)), ref)
    if activation == "relu":
        bad = [-x for x in q]
    else:
        bad = random_scales(spec, g, "positive", (B,), low=1.5, high=3.0)
    assert_changes(cnn_out(scale_hidden(net, bad)), ref)


def test_shared_group_element_and_unbatched_network():
    spec = MLP_SPECS["tanh-mlp"]
    single = random_net(spec, batch=())
    g = torch.Generator().manual_seed(6)
    perms = random_permutations(spec, g)
    q = random_scales(spec, g, "sign")
    ref = mlp_out(single)
    assert_same_function(mlp_out(scale_hidden(permute_hidden(single, perms), q)), ref)
    # One (n_l,) element applied to a batch acts on every network alike.
    batch = random_net(spec)
    ref_b = mlp_out(batch)
    assert_same_function(mlp_out(permute_hidden(batch, perms)), ref_b)


def test_transforms_do_not_mutate_their_input():
    net = random_net(MLP_SPECS["relu-mlp"])
    before = [w.clone() for w in net.weights]
    g = torch.Generator().manual_seed(7)
    scale_hidden(net, random_scales(net.spec, g, "positive", (B,)))
    permute_hidden(net, random_permutations(net.spec, g, (B,)))
    for a, b in zip(before, net.weights, strict=True):
        assert torch.equal(a, b)


def test_mixed_scales_pick_the_group_per_network():
    spec = MLP_SPECS["relu-mlp"]
    odd = torch.tensor([True, False, True, False])
    q = random_mixed_scales(spec, odd, torch.Generator().manual_seed(8))
    for layer in q:
        assert torch.all(layer[odd].abs() == 1)
        assert torch.all(layer[~odd] > 0)
        assert not torch.all(layer[~odd] == 1)


def test_wrong_group_element_shape_is_a_clear_error():
    spec = MLP_SPECS["relu-mlp"]
    net = random_net(spec)
    with pytest.raises(ValueError, match="hidden layer"):
        permute_hidden(net, [torch.arange(7)])
    with pytest.raises(ValueError, match="expected 5"):
        scale_hidden(net, [torch.ones(7), torch.ones(4)])
