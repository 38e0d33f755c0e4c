"""Fit many SIRENs at once to many images: the stand-in INR zoos (datasets.md §6).

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

import torch

from scalegmn.functional import coordinate_grid, render
from scalegmn.network import Network, NetworkSpec

logger = logging.getLogger(__name__)

#: Networks fitted together; small enough that the activations stay in the CPU cache.
CHUNK = 32


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float32) * 2.0 - 1.0) * bound


def init_dws(spec: NetworkSpec, n: int, gen: torch.Generator) -> Network:
    """DWS SIREN init (datasets.md §6.1) for ``n`` networks.

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
    """NFN SIREN init (datasets.md §6.2) for ``n`` networks.

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
    spec: NetworkSpec, params: list[torch.Tensor], coords: torch.Tensor, targets: torch.Tensor
) -> list[torch.Tensor]:
    """Gradients of each network's mean squared error, by hand (no autograd).

    Args:
        spec: a SIREN spec (sine hidden layers, linear output).
        params: ``[A_0, c_0, ..., A_{L-1}, c_{L-1}]``, batch ``(B,)``, where the sine layers
            are pre-scaled: ``A = omega0 * W``, ``c = omega0 * b``; the last layer is as is.
        coords: ``(P, n0)`` input points shared by all networks.
        targets: ``(B, P, nL)`` wanted outputs (including ``spec.output_offset``).

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
    grad_out = (h + spec.output_offset - targets).mul_(2.0 / (n_points * n_out))
    grads: list[torch.Tensor] = [torch.empty(0)] * (2 * n_layers)
    for layer in reversed(range(n_layers)):
        grads[2 * layer] = torch.bmm(grad_out.transpose(-1, -2), inputs[layer])
        grads[2 * layer + 1] = grad_out.sum(dim=-2)
        if layer > 0:
            grad_out = torch.bmm(grad_out, params[2 * layer]).mul_(derivs[layer - 1])
    return grads


def _fit_chunk(
    spec: NetworkSpec,
    params: list[torch.Tensor],
    coords: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    lr: float,
) -> list[torch.Tensor]:
    """Adam on one chunk, in place on the pre-scaled ``params`` of :func:`mse_gradients`."""
    lrs = [
        lr * (spec.omega0 if spec.activations[i // 2] == "sine" else 1.0)
        for i in range(len(params))
    ]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        grads = mse_gradients(spec, params, coords, targets)
        # Adam is elementwise, so a batch of networks = each network alone
        bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step
        for p, g, mi, vi, lr_i in zip(params, grads, m, v, lrs, strict=True):
            mi.mul_(beta1).add_(g, alpha=1.0 - beta1)
            vi.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = (vi / bc2).sqrt_().add_(eps)
            p.addcdiv_(mi, denom, value=-lr_i / bc1)
    return params


def fit_sirens(
    init: Network,
    images: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-3,
    chunk: int = CHUNK,
    label: str = "sirens",
) -> Network:
    """Fit a batch of SIRENs, network ``k`` to ``images[k]``, with full-grid Adam.

    Args:
        init: initial networks, batch shape ``(B,)``.
        images: fitting targets in the network's output units (e.g. pixel/255 for DWS,
            (pixel/255 - 0.5)/0.5 for NFN), ``(B, C, H, W)``; pixel (r, c) is evaluated at the
            coordinates of ``spec.grid``, exactly as :func:`scalegmn.functional.render` does.
        steps: Adam steps per network.
        lr: Adam learning rate for the original parameters.
        chunk: networks fitted together (affects speed only).
        label: name used in progress logs.

    Returns:
        The fitted networks (the init's dtype), batch shape ``(B,)``.
    """
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
    start, last_log = time.monotonic(), time.monotonic()
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        params = []
        for w, b, s in zip(init.weights, init.biases, scales, strict=True):
            params += [w[lo:hi] * s, b[lo:hi] * s]
        params = _fit_chunk(spec, params, coords, targets[lo:hi], steps, lr)
        for layer, s in enumerate(scales):
            out_w[layer][lo:hi] = params[2 * layer] / s
            out_b[layer][lo:hi] = params[2 * layer + 1] / s
        if time.monotonic() - last_log > 10 or hi == n:
            last_log = time.monotonic()
            logger.info("%s: fitted %d/%d SIRENs (%.1f s)", label, hi, n, last_log - start)
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
