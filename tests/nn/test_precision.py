"""bf16 and tf32 precision (scalegmn.nn.precision): every symmetry of every preset still holds
under bfloat16 autocast, to a tolerance set for bfloat16, each against a control that is not a
symmetry; the invariant maps and LayerNorm stay in float32 (exact to float32 rounding there).

Tolerance: bfloat16 keeps 8 mantissa bits (unit roundoff 2^-8 = 3.9e-3), so a symmetric input
reaches the bfloat16 matmuls with other roundings. The yardstick is the model's own bf16
rounding of that output, ``rounding = |bf16(x) - float32(x)| / |float32(x)|``: a symmetry may
move the bf16 output by at most ROUNDING_FACTOR x rounding. Measured over 3 seeds x every
invariant preset (d_hid 12): the largest symmetric change was 1.5 x rounding (svhn/scalegmn_relu,
positive scaling); permutations 0-0.004 x. ROUNDING_FACTOR = 3 leaves 2x margin. Each check has
a control (every parameter jittered by 50 %, not a symmetry) that must change the output.
"""

from __future__ import annotations

import functools

import pytest
import torch

from scalegmn.execution import ExecutionConfig
from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset, list_presets
from scalegmn.nn.equivariant import inverse_edge
from scalegmn.nn.invariant import Tau
from scalegmn.nn.mlp import MLP
from scalegmn.nn.precision import apply_backend_flags
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network
from scalegmn.weightspace.symmetry import (
    permute_hidden,
    random_mixed_scales,
    random_permutations,
    random_scales,
    scale_hidden,
)
from scalegmn.weightspace.testing import check_symmetry, random_network, relative_change

ROUNDING_FACTOR = 3.0
BF16_TOL = 0.1  # bf16 vs float32, relative: measured up to 4.3e-2 (cifar10/scalegmn_hetero_bidir)
FP32_TOL = 1e-5  # float32 maps of float32 inputs: ~10 float32 roundings (1.2e-7 each)
B = 4
SIGN_MASK = torch.tensor([True, False, True, False])
BF16 = ExecutionConfig(precision="bf16")


def CONTROL(net: Network) -> Network:  # noqa: N802
    """Not a symmetry: independent networks (a jitter of the weights moves some presets' d_hid 12
    outputs at initialisation by less than bfloat16 resolves)."""
    return random_network(net.spec, net.batch_shape, seed=99, scale=5.0, dtype=torch.float32)


def bf16_model(name: str, execution: ExecutionConfig = BF16):
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 12, "n_layers": min(preset.model.n_layers, 3)})
    return build_model(config, preset_spec(name), task=preset.task, n_outputs=preset_outputs(preset),
                       execution=execution).eval(), config


def scales_for(config, spec, seed):
    g = torch.Generator().manual_seed(seed)
    if config.symmetry == "hetero":
        q = random_mixed_scales(spec, SIGN_MASK, g)
    else:
        q = random_scales(spec, g, "sign" if config.symmetry == "sign" else "positive", (B,))
    return [t.float() for t in q]


def assert_bf16_symmetric(sym: float, ctrl: float, rounding: float, what: str) -> None:
    assert ctrl > 1e-6, f"{what}: the control changed the output by {ctrl:.2e} only"
    assert rounding <= BF16_TOL, f"{what}: bf16 is {rounding:.2e} from float32"
    assert sym <= ROUNDING_FACTOR * rounding + 1e-7, (
        f"{what}: a symmetry changed the bf16 output by {sym:.2e}, more than {ROUNDING_FACTOR} x "
        f"bf16's own rounding {rounding:.2e} (control {ctrl:.2e})")


def bf16_rounding(name: str, model, run, net) -> float:
    """Relative distance of the bf16 output from float32's (same parameters, same input)."""
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 12, "n_layers": min(preset.model.n_layers, 3)})
    ref = build_model(config, preset_spec(name), task=preset.task, n_outputs=preset_outputs(preset)).eval()
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        return relative_change(run(ref, net), run(model, net))


# ScaleGMN's presets (baselines respect permutations only: their own tests).
SCALEGMN = [n for n in list_presets() if get_preset(n).model.kind == "scalegmn"]


@pytest.mark.parametrize("name", [n for n in SCALEGMN if get_preset(n).task != "editing"])
def test_bf16_preset_is_permutation_and_scale_invariant(name):
    model, config = bf16_model(name)
    spec = preset_spec(name)
    mask = SIGN_MASK if config.symmetry == "hetero" else None
    run_on = lambda m, net: m(WeightBatch(net, sign_mask=mask))  # noqa: E731
    run = functools.partial(run_on, model)
    for seed in range(2):
        net = random_network(spec, (B,), seed=seed, dtype=torch.float32)
        rounding = bf16_rounding(name, model, run_on, net)
        perms = random_permutations(spec, torch.Generator().manual_seed(10 + seed), (B,))
        q = scales_for(config, spec, 20 + seed)
        sym, ctrl = check_symmetry(run, net, lambda n, p=perms: permute_hidden(n, p), control=CONTROL)
        assert_bf16_symmetric(sym, ctrl, rounding, f"{name} permutation")
        sym, ctrl = check_symmetry(run, net, lambda n, q=q: scale_hidden(n, q), control=CONTROL)
        assert_bf16_symmetric(sym, ctrl, rounding, f"{name} {config.symmetry} scaling")


@pytest.mark.parametrize("name", [n for n in SCALEGMN if get_preset(n).task == "editing"])
def test_bf16_editing_preset_is_equivariant(name):
    model, config = bf16_model(name)
    spec = preset_spec(name)
    run_on = lambda m, net: m(WeightBatch(net))  # noqa: E731
    run = functools.partial(run_on, model)
    for seed in range(2):
        g = torch.Generator().manual_seed(seed)
        q = [t.float() for t in random_scales(spec, g, "sign", (B,))]
        perms = random_permutations(spec, g, (B,))

        def act(n: Network, q=q, perms=perms) -> Network:
            return permute_hidden(scale_hidden(n, q), perms)

        def act_out(out, act=act):
            moved = act(Network(spec, out[0], out[1]))
            return moved.weights, moved.biases

        net = random_network(spec, (B,), seed=seed, dtype=torch.float32)
        rounding = bf16_rounding(name, model, run_on, net)
        sym, ctrl = check_symmetry(run, net, act, expected=act_out, control=CONTROL)
        assert_bf16_symmetric(sym, ctrl, rounding, f"{name} sign scaling and permutation")


def test_bf16_really_computes_in_bfloat16_and_stays_close_to_float32():
    """Not a no-op: the bf16 output differs from float32's, by no more than BF16_TOL."""
    name = "mnist_cls/scalegmn"
    torch.manual_seed(0)
    fp32_model, _ = bf16_model(name, ExecutionConfig(precision="float32"))
    bf16, _ = bf16_model(name)
    bf16.load_state_dict(fp32_model.state_dict())
    net = random_network(preset_spec(name), (B,), seed=0, dtype=torch.float32)
    with torch.no_grad():
        ref, out = fp32_model(WeightBatch(net)), bf16(WeightBatch(net))
    assert out.dtype == torch.float32
    change = float((out - ref).norm() / ref.norm())
    assert 0 < change <= BF16_TOL, change


@pytest.mark.parametrize("memory", ["plain", "lean"])
def test_bf16_training_gradients_match_float32_within_bf16_tolerance(memory):
    """The training step in bf16 (lean blocks in float32, the rest autocast) gives float32's
    gradient to bf16 accuracy (measured 2-3e-4 relative), against a control gradient of
    another batch (relative change 1.6e-2, > 10x)."""
    name = "mnist_cls/scalegmn_bidir"
    spec = preset_spec(name)
    grads = {}
    for precision in ("float32", "bf16"):
        torch.manual_seed(0)
        model, _ = bf16_model(name, ExecutionConfig(precision=precision, memory=memory))
        model.train()
        for seed in (0, 1):
            model.zero_grad()
            net = random_network(spec, (B,), seed=seed, scale=0.1, dtype=torch.float32)
            loss = torch.nn.functional.cross_entropy(model(WeightBatch(net)), torch.arange(B))
            loss.backward()
            grads[precision, seed] = torch.cat([p.grad.flatten() for p in model.parameters()
                                                if p.grad is not None])
    ref = grads["float32", 0]
    sym = float((grads["bf16", 0] - ref).norm() / ref.norm())
    ctrl = float((grads["float32", 1] - ref).norm() / ref.norm())
    assert torch.isfinite(grads["bf16", 0]).all()
    assert ctrl > 10 * sym and sym <= BF16_TOL, (sym, ctrl)


@pytest.mark.parametrize("symmetry", ["sign", "scale"])
def test_invariant_maps_run_in_float32_under_autocast(symmetry):
    """|x| and x/‖x‖ under bf16 autocast: float32 results, invariant to float32 rounding (a
    bfloat16 norm would be off by ~1e-2); control: jittered rows change τ."""
    tau = Tau(8, symmetry)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    if symmetry == "sign":
        q = (torch.randint(0, 2, (64, 1), generator=g) * 2 - 1).float()
    else:
        q = torch.rand(64, 1, generator=g) * 4 + 0.25
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref, sym_out = tau(x), tau(q * x)
        ctrl_out = tau(x * (1 + 0.1 * torch.randn(x.shape, generator=g)))
    assert ref.dtype == torch.float32
    sym = float((sym_out - ref).norm() / ref.norm())
    ctrl = float((ctrl_out - ref).norm() / ref.norm())
    assert ctrl > 1e-3 and sym <= FP32_TOL, (sym, ctrl)


def test_inverse_edge_and_layer_norm_run_in_float32_under_autocast():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(64, 8, generator=g)
    c = torch.rand(64, 1, generator=g) * 4 + 0.25
    mlp = MLP(8, 4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inv, inv_scaled = inverse_edge(e), inverse_edge(c * e)
        inv_ctrl = inverse_edge(e + 0.1 * torch.randn(e.shape, generator=g))
        normed = mlp.normalize(mlp.first(e))
        assert mlp.first(e).dtype == torch.bfloat16  # autocast is on for the matmul
    assert inv.dtype == normed.dtype == torch.float32
    sym = float((inv_scaled - inv / c).norm() / inv.norm())  # e/‖e‖² scales by 1/c
    ctrl = float((inv_ctrl - inv).norm() / inv.norm())
    assert ctrl > 1e-3 and sym <= FP32_TOL, (sym, ctrl)


def test_tf32_and_deterministic_set_the_process_flags():
    try:
        apply_backend_flags("tf32", deterministic=True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.are_deterministic_algorithms_enabled()
        apply_backend_flags("float32", deterministic=False)
        assert not torch.backends.cuda.matmul.allow_tf32
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        apply_backend_flags("float32", deterministic=False)


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_cuda_precisions_keep_symmetry(precision):
    name = "cifar10/scalegmn_hetero_bidir"
    model, config = bf16_model(name, ExecutionConfig(precision=precision))
    model.cuda()
    spec = preset_spec(name)
    run_on = lambda m, net: m(WeightBatch(net.to(device="cuda"), sign_mask=SIGN_MASK.cuda())).cpu()  # noqa: E731
    run = functools.partial(run_on, model)
    net = random_network(spec, (B,), seed=0, dtype=torch.float32)
    q = scales_for(config, spec, 20)
    rounding = bf16_rounding(name, model, lambda m, n: run_on(m.cuda(), n), net)
    sym, ctrl = check_symmetry(run, net, lambda n: scale_hidden(n, q), control=CONTROL)
    assert_bf16_symmetric(sym, ctrl, max(rounding, 1e-3), f"{name} {precision} on CUDA")
    apply_backend_flags("float32", deterministic=False)
