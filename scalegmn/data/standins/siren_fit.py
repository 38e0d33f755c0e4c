"""Fit many SIRENs at once to many images: the stand-in INR zoos (docs/datasets.md §6).

Every network in a batch is fitted to its own image with its own Adam state, in one set of
batched matmuls; the loss of each network depends only on its own parameters, and Adam is
elementwise, so a batched fit equals fitting each network alone.

The forward and backward passes are written out by hand for the 2-hidden-layer SIREN: it
avoids autograd's extra elementwise passes over the ``(B, pixels, 32)`` activations, which
dominate the cost on CPU. The sine layers are optimised in the scaled parameters
``omega0 * W`` and ``omega0 * b`` (the argument of the sine); Adam is invariant to a constant
gradient scale, so the learning rate is multiplied by ``omega0`` to make the same steps as
Adam on ``W`` and ``b``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch

from scalegmn.weightspace.functional import coordinate_grid, render
from scalegmn.weightspace.network import Network, NetworkSpec

logger = logging.getLogger(__name__)

#: Networks fitted together; small enough that the activations stay in the CPU cache.
CHUNK = 32


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float32) * 2.0 - 1.0) * bound


def init_dws(spec: NetworkSpec, n: int, gen: torch.Generator) -> Network:
    """DWS SIREN init (docs/datasets.md §6.1) for ``n`` networks.

    Sine layers: weights U(±sqrt(6/fan_in)/omega0) (the first layer too), biases zero.
    Last layer: ``nn.Linear`` default, weights and biases U(±1/sqrt(fan_in)).
    """
    weights, biases = [], []
    for layer in range(spec.n_layers):
        fan_in = spec.layout[layer]
        w_shape, b_shape = (n, *spec.weight_shape(layer)), (n, *spec.bias_shape(layer))
        if spec.activations[layer] == "sine":
            weights.append(_uniform(w_shape, math.sqrt(6.0 / fan_in) / spec.omega0, gen))
            biases.append(torch.zeros(b_shape))
        else:
            weights.append(_uniform(w_shape, 1.0 / math.sqrt(fan_in), gen))
            biases.append(_uniform(b_shape, 1.0 / math.sqrt(fan_in), gen))
    return Network(spec, weights, biases)


def init_nfn(spec: NetworkSpec, n: int, gen: torch.Generator) -> Network:
    """NFN SIREN init (docs/datasets.md §6.2) for ``n`` networks.

    First-layer weights U(±1/fan_in); hidden and last weights U(±sqrt(6/fan_in)/omega0);
    all biases keep the PyTorch default U(±1/sqrt(fan_in)).
    """
    weights, biases = [], []
    for layer in range(spec.n_layers):
        fan_in = spec.layout[layer]
        w_shape, b_shape = (n, *spec.weight_shape(layer)), (n, *spec.bias_shape(layer))
        bound = 1.0 / fan_in if layer == 0 else math.sqrt(6.0 / fan_in) / spec.omega0
        weights.append(_uniform(w_shape, bound, gen))
        biases.append(_uniform(b_shape, 1.0 / math.sqrt(fan_in), gen))
    return Network(spec, weights, biases)


def _check_spec(spec: NetworkSpec) -> None:
    if (
        spec.is_cnn
        or spec.activations[:-1] != ("sine",) * (spec.n_layers - 1)
        or (spec.activations[-1] != "identity")
    ):
        raise ValueError(
            f"fit_sirens() fits SIRENs (sine hidden layers, linear output), got "
            f"activations {spec.activations}"
        )


def mse_gradients(
    spec: NetworkSpec,
    params: list[torch.Tensor],
    coords: torch.Tensor,
    targets: torch.Tensor,
    mse_out: list[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Gradients of each network's mean squared error, by hand (no autograd).

    Args:
        spec: a SIREN spec (sine hidden layers, linear output).
        params: ``[A_0, c_0, ..., A_{L-1}, c_{L-1}]``, batch ``(B,)``, where the sine layers
            are pre-scaled: ``A = omega0 * W``, ``c = omega0 * b``; the last layer is as is.
        coords: ``(P, n0)`` input points shared by all networks.
        targets: ``(B, P, nL)`` wanted outputs (including ``spec.output_offset``).
        mse_out: if given, each network's mean squared error ``(B,)`` is appended to it.

    Returns:
        ``d mean((f(x) - t)^2) / d params`` per network, same shapes as ``params``.
    """
    n_layers = spec.n_layers
    n_points, n_out = targets.shape[-2:]
    h = coords.expand(params[0].shape[0], *coords.shape)  # (B, P, n0)
    inputs, derivs = [], []
    for layer in range(n_layers):
        a, c = params[2 * layer], params[2 * layer + 1]
        inputs.append(h)
        z = torch.baddbmm(c.unsqueeze(-2), h, a.transpose(-1, -2))  # (B, P, out)
        if layer < n_layers - 1:
            derivs.append(torch.cos(z))  # d sin(z) / dz, kept for the backward pass
            h = torch.sin_(z)
        else:
            h = z
    err = h + spec.output_offset - targets
    if mse_out is not None:
        mse_out.append(err.square().mean(dim=(-2, -1)))
    grad_out = err.mul_(2.0 / (n_points * n_out))
    grads: list[torch.Tensor] = [torch.empty(0)] * (2 * n_layers)
    for layer in reversed(range(n_layers)):
        grads[2 * layer] = torch.bmm(grad_out.transpose(-1, -2), inputs[layer])
        grads[2 * layer + 1] = grad_out.sum(dim=-2)
        if layer > 0:
            grad_out = torch.bmm(grad_out, params[2 * layer]).mul_(derivs[layer - 1])
    return grads


@dataclass(frozen=True)
class FitRecipe:
    """How the stand-in INRs are fitted: Adam with a cosine learning-rate decay, stopped per
    network at a PSNR target, as the real zoos are fitted towards one (DWS: Adam, up to 1k
    steps, stop at 40 dB).

    ``first_layer_lr`` is separate because the DWS init starts the first sine layer at a
    frequency below one period over the image (weights U(±sqrt(6/2)/30)): at one shared rate
    the first layer is what holds the fit back (300 steps: 27 dB at 1e-2 for every layer,
    33 dB with 3e-2 on the first layer; MNIST stand-in digits, 64 INRs).
    """

    steps: int
    lr: float = 1e-3
    first_layer_lr: float | None = None
    beta2: float = 0.999
    final_lr_fraction: float = 1.0  # 1: constant; < 1: cosine decay to this fraction
    target_psnr: float | None = None  # dB, on the unclipped render; None: run every step
    check_every: int = 25

    def lr_factor(self, step: int) -> float:
        """Multiplier of the learning rate at 1-based ``step``."""
        f = self.final_lr_fraction
        if f >= 1.0:
            return 1.0
        return f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / self.steps))


def _fit_chunk(
    spec: NetworkSpec,
    params: list[torch.Tensor],
    coords: torch.Tensor,
    targets: torch.Tensor,
    recipe: FitRecipe,
    peak: float,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Adam on one chunk of the pre-scaled ``params`` of :func:`mse_gradients`.

    Networks that reach ``recipe.target_psnr`` leave the batch (their parameters are final),
    so the rest of the chunk runs on fewer networks. Returns the fitted parameters and the
    number of steps each network took.
    """
    layer_lr = [recipe.lr] * spec.n_layers
    if recipe.first_layer_lr is not None:
        layer_lr[0] = recipe.first_layer_lr
    lrs = [
        layer_lr[i // 2] * (spec.omega0 if spec.activations[i // 2] == "sine" else 1.0)
        for i in range(len(params))
    ]
    out = [p.clone() for p in params]
    n = params[0].shape[0]
    steps_taken = torch.full((n,), recipe.steps, dtype=torch.int64)
    active = torch.arange(n)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, recipe.beta2, 1e-8
    for step in range(1, recipe.steps + 1):
        mse: list[torch.Tensor] = []
        check = recipe.target_psnr is not None and step % recipe.check_every == 0
        grads = mse_gradients(spec, params, coords, targets, mse if check else None)
        if check:
            done = 10.0 * torch.log10(peak**2 / mse[0].clamp_min(1e-20)) >= recipe.target_psnr
            if bool(done.any()):
                # the parameters that reached the target are those before this step's update
                for o, p in zip(out, params, strict=True):
                    o[active[done]] = p[done]
                steps_taken[active[done]] = step - 1
                keep = ~done
                active, targets = active[keep], targets[keep]
                params = [p[keep] for p in params]
                grads = [g[keep] for g in grads]
                m = [x[keep] for x in m]
                v = [x[keep] for x in v]
                if active.numel() == 0:
                    return out, steps_taken
        # Adam is elementwise, so a batch of networks = each network alone
        bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step
        scale = recipe.lr_factor(step) / bc1
        for p, g, mi, vi, lr_i in zip(params, grads, m, v, lrs, strict=True):
            mi.mul_(beta1).add_(g, alpha=1.0 - beta1)
            vi.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = (vi / bc2).sqrt_().add_(eps)
            p.addcdiv_(mi, denom, value=-lr_i * scale)
    for o, p in zip(out, params, strict=True):
        o[active] = p
    return out, steps_taken


def fit_sirens(
    init: Network,
    images: torch.Tensor,
    *,
    steps: int | None = None,
    lr: float = 1e-3,
    recipe: FitRecipe | None = None,
    peak: float = 1.0,
    chunk: int = CHUNK,
    label: str = "sirens",
    steps_taken: list[torch.Tensor] | None = None,
) -> Network:
    """Fit a batch of SIRENs, network ``k`` to ``images[k]``, with full-grid Adam.

    Args:
        init: initial networks, batch shape ``(B,)``.
        images: fitting targets in the network's output units (e.g. pixel/255 for DWS,
            (pixel/255 - 0.5)/0.5 for NFN), ``(B, C, H, W)``; pixel (r, c) is evaluated at the
            coordinates of ``spec.grid``, exactly as :func:`scalegmn.weightspace.functional.render` does.
        steps: plain constant-rate Adam for ``steps`` steps (when no ``recipe`` is given).
        lr: learning rate of that plain Adam.
        recipe: the full fitting recipe (per-layer rates, decay, PSNR target).
        peak: width of the output range, for the PSNR target (1 for DWS, 2 for NFN).
        chunk: networks fitted together (affects speed only).
        label: name used in progress logs.
        steps_taken: if given, the ``(B,)`` Adam steps each network took are appended to it.

    Returns:
        The fitted networks (the init's dtype), batch shape ``(B,)``.
    """
    if recipe is None:
        if steps is None:
            raise ValueError("fit_sirens(): give steps or a recipe")
        recipe = FitRecipe(steps=steps, lr=lr)
    spec = init.spec
    _check_spec(spec)
    n, n_out, height, width = images.shape
    if tuple(init.batch_shape) != (n,) or n_out != spec.layout[-1]:
        raise ValueError(
            f"fit_sirens(): {tuple(init.batch_shape)} networks with {spec.layout[-1]} outputs "
            f"cannot fit images of shape {tuple(images.shape)}"
        )
    dtype = init.weights[0].dtype
    coords = coordinate_grid((height, width), spec.grid, dtype)
    # (B, C, H, W) -> (B, H*W, C), row-major pixels as in coordinate_grid
    targets = images.to(dtype).permute(0, 2, 3, 1).reshape(n, height * width, n_out)
    scales = [spec.omega0 if act == "sine" else 1.0 for act in spec.activations]
    out_w = [torch.empty_like(w) for w in init.weights]
    out_b = [torch.empty_like(b) for b in init.biases]
    taken = torch.empty(n, dtype=torch.int64)
    start, last_log = time.monotonic(), time.monotonic()
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        params = []
        for w, b, s in zip(init.weights, init.biases, scales, strict=True):
            params += [w[lo:hi] * s, b[lo:hi] * s]
        params, taken[lo:hi] = _fit_chunk(spec, params, coords, targets[lo:hi], recipe, peak)
        for layer, s in enumerate(scales):
            out_w[layer][lo:hi] = params[2 * layer] / s
            out_b[layer][lo:hi] = params[2 * layer + 1] / s
        if time.monotonic() - last_log > 10 or hi == n:
            last_log = time.monotonic()
            logger.info(
                "%s: fitted %d/%d SIRENs (%.1f s, mean %.0f steps)",
                label, hi, n, last_log - start, float(taken[:hi].double().mean()),
            )
    if steps_taken is not None:
        steps_taken.append(taken)
    return init.replace(weights=tuple(out_w), biases=tuple(out_b))


def psnr(net: Network, images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """PSNR in dB of each INR's render against its image, ``(B,)``.

    Renders are clipped to ``value_range`` (as when saved as an image); the peak is its width.

    Args:
        net: batch of INRs ``(B,)``.
        images: ``(B, C, H, W)`` in the network's output units.
        value_range: ``(0, 1)`` for DWS targets, ``(-1, 1)`` for NFN targets.
    """
    lo, hi = value_range
    out = render(net, tuple(images.shape[-2:])).clamp(lo, hi)
    mse = ((out - images) ** 2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return 10.0 * torch.log10((hi - lo) ** 2 / mse)
