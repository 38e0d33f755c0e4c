"""Batched SIREN fitting: hand-written gradients, init recipes, batch = one by one."""

import math

import pytest
import torch

from scalegmn.data.standins.siren_fit import (
    FitRecipe,
    fit_sirens,
    init_dws,
    init_nfn,
    mse_gradients,
    psnr,
)
from scalegmn.weightspace.functional import coordinate_grid, mlp_forward, render
from scalegmn.weightspace.network import dws_siren_spec, nfn_siren_spec


@pytest.mark.parametrize("spec_fn", [dws_siren_spec, nfn_siren_spec])
def test_hand_gradients_match_autograd_float64(spec_fn):
    spec = spec_fn()
    gen = torch.Generator().manual_seed(0)
    init = init_nfn(spec, 3, gen).to(torch.float64)
    coords = coordinate_grid((5, 6), spec.grid, torch.float64)
    targets = torch.rand(3, 30, spec.layout[-1], generator=gen, dtype=torch.float64)
    scales = [spec.omega0 if a == "sine" else 1.0 for a in spec.activations]
    params = []
    for w, b, s in zip(init.weights, init.biases, scales, strict=True):
        params += [(w * s).requires_grad_(), (b * s).requires_grad_()]
    weights = [params[2 * i] / s for i, s in enumerate(scales)]
    biases = [params[2 * i + 1] / s for i, s in enumerate(scales)]
    out = mlp_forward(spec, weights, biases, coords)
    loss = ((out - targets) ** 2).mean(dim=(1, 2)).sum()
    expected = torch.autograd.grad(loss, params)
    got = mse_gradients(spec, [p.detach() for p in params], coords, targets)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)
    # control: a different target gives different gradients
    other = mse_gradients(spec, [p.detach() for p in params], coords, targets + 0.1)
    assert not torch.allclose(other[-1], got[-1])


def test_init_recipes():
    gen = torch.Generator().manual_seed(0)
    dws = init_dws(dws_siren_spec(), 64, gen)
    assert all(float(b.abs().max()) == 0.0 for b in dws.biases[:2])  # sine biases zero
    assert float(dws.weights[0].abs().max()) <= math.sqrt(6 / 2) / 30
    assert float(dws.weights[1].abs().max()) <= math.sqrt(6 / 32) / 30
    assert float(dws.weights[2].abs().max()) <= 1 / math.sqrt(32)
    assert float(dws.biases[2].abs().max()) > 0.0
    nfn = init_nfn(nfn_siren_spec(), 64, gen)
    assert 0.45 < float(nfn.weights[0].abs().max()) <= 0.5  # U(+-1/fan_in)
    assert float(nfn.weights[1].abs().max()) <= math.sqrt(6 / 32) / 30
    assert 0.6 < float(nfn.biases[0].abs().max()) <= 1 / math.sqrt(2)  # PyTorch default


def test_batched_fit_equals_one_by_one_and_improves():
    spec = dws_siren_spec()
    gen = torch.Generator().manual_seed(0)
    init = init_dws(spec, 3, gen).to(torch.float64)  # float64: SIREN fits amplify rounding
    images = torch.rand(3, 1, 8, 8, generator=gen, dtype=torch.float64)
    together = fit_sirens(init, images, steps=25, lr=1e-2, chunk=3)
    for k in range(3):
        one = init.replace(
            weights=tuple(w[k : k + 1] for w in init.weights),
            biases=tuple(b[k : k + 1] for b in init.biases),
        )
        alone = fit_sirens(one, images[k : k + 1], steps=25, lr=1e-2, chunk=1)
        for a, t in zip(alone.weights, together.weights, strict=True):
            torch.testing.assert_close(a[0], t[k], rtol=1e-7, atol=1e-9)
    assert (psnr(together, images, (0.0, 1.0)) > psnr(init, images, (0.0, 1.0)) + 3.0).all()


def test_fit_rejects_a_non_siren():
    relu_mlp = init_dws(dws_siren_spec(), 1, torch.Generator())
    relu_mlp = relu_mlp.replace(spec=dws_siren_spec().with_activation("relu"))
    with pytest.raises(ValueError, match="SIREN"):
        fit_sirens(relu_mlp, torch.zeros(1, 1, 4, 4), steps=1)


def test_psnr_target_stops_each_network_alone_and_keeps_its_state():
    """Networks that reach the target leave the batch: each ends exactly as when fitted alone,
    stops at the first check past the target, and the rest keep training."""
    spec = dws_siren_spec()
    gen = torch.Generator().manual_seed(1)
    init = init_dws(spec, 4, gen).to(torch.float64)
    images = torch.rand(4, 1, 28, 28, generator=gen, dtype=torch.float64)
    images[:2] = 0.5  # a flat image: the DWS offset +0.5 already fits it, so these stop early
    # measured (float64, every capability alike): flat images stop after 34 and 44 updates
    recipe = FitRecipe(steps=100, lr=1e-2, first_layer_lr=3e-2, final_lr_fraction=0.1,
                       target_psnr=25.0, check_every=5)
    taken: list[torch.Tensor] = []
    together = fit_sirens(init, images, recipe=recipe, chunk=4, steps_taken=taken)
    steps = taken[0]
    # a check at step s measures the parameters after s - 1 updates: those are kept
    assert (steps[:2] < recipe.steps).all() and ((steps[:2] + 1) % recipe.check_every == 0).all()
    assert (steps[2:] == recipe.steps).all()  # CONTROL: 28x28 noise does not reach 25 dB
    unclipped = ((render(together, (28, 28)) - images) ** 2).flatten(1).mean(1)
    assert (10 * torch.log10(1 / unclipped[:2]) >= 25.0).all()
    for k in range(4):
        one = init.replace(weights=tuple(w[k : k + 1] for w in init.weights),
                           biases=tuple(b[k : k + 1] for b in init.biases))
        alone_steps: list[torch.Tensor] = []
        alone = fit_sirens(one, images[k : k + 1], recipe=recipe, chunk=1, steps_taken=alone_steps)
        assert int(alone_steps[0]) == int(steps[k])
        for a, t in zip(alone.weights, together.weights, strict=True):
            torch.testing.assert_close(a[0], t[k], rtol=1e-7, atol=1e-9)
