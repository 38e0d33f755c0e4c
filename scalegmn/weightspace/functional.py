"""Forward passes of a :class:`~scalegmn.weightspace.network.Network`: evaluate an MLP/SIREN on points,
render an INR to its image, and run a zoo CNN on images. All batched over networks.

Conventions (docs/datasets.md §4.3, §6):
- SIREN layer: ``sin(omega0 * (W x + b))``; the output gets ``spec.output_offset`` added.
- Rendering grid: ``linspace(-1, 1, n)`` per axis; ``"xy"`` maps pixel (r, c) to the input
  ``(lin[c], lin[r])`` (DWS), ``"ij"`` to ``(lin[r], lin[c])`` (NFN). Output ``(C, H, W)``.
- CNN: conv layers with ``spec.conv_stride`` / ``spec.conv_padding``, then global average
  pooling before the first linear layer. A residual connection ``j -> i`` adds layer j's
  activated output to layer i's pre-activation on their first shared channels (CNN Wild Park).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from scalegmn.weightspace.network import Network, NetworkSpec

LEAKY_RELU_SLOPE = 0.01  # torch's default, the one CNN Wild Park's generator uses


def activate(z: torch.Tensor, activation: str, omega0: float) -> torch.Tensor:
    """Apply the named activation elementwise: ``sin(omega0 * z)`` for ``"sine"``."""
    if activation == "sine":
        return torch.sin(omega0 * z)
    if activation == "relu":
        return torch.relu(z)
    if activation == "tanh":
        return torch.tanh(z)
    if activation == "identity":
        return z
    if activation == "leaky_relu":
        return F.leaky_relu(z, LEAKY_RELU_SLOPE)
    if activation == "gelu":
        return F.gelu(z)
    if activation == "sigmoid":
        return torch.sigmoid(z)
    raise ValueError(f"unknown activation {activation!r}")


def mlp_forward(
    spec: NetworkSpec,
    weights: tuple[torch.Tensor, ...],
    biases: tuple[torch.Tensor, ...],
    x: torch.Tensor,
) -> torch.Tensor:
    """Evaluate an MLP/SIREN batch on points.

    Shapes:
        weights[l]: ``(*batch, n_{l+1}, n_l)``; biases[l]: ``(*batch, n_{l+1})``.
        x: ``(P, n0)`` shared by all networks, or ``(*batch, P, n0)``.
        returns: ``(*batch, P, nL)``.
    """
    if spec.is_cnn:
        raise ValueError("mlp_forward() got a CNN spec; use cnn_forward()")
    h = x
    for w, b, act in zip(weights, biases, spec.activations, strict=True):
        h = activate(torch.matmul(h, w.transpose(-1, -2)) + b.unsqueeze(-2), act, spec.omega0)
    return h + spec.output_offset


def coordinate_grid(
    shape: tuple[int, int], grid: str, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Input coordinates of every pixel, row-major over (r, c): ``(H * W, 2)``."""
    h, w = shape
    rows = torch.linspace(-1.0, 1.0, h, dtype=dtype)
    cols = torch.linspace(-1.0, 1.0, w, dtype=dtype)
    r, c = torch.meshgrid(rows, cols, indexing="ij")
    if grid == "xy":
        return torch.stack([c, r], dim=-1).reshape(-1, 2)
    if grid == "ij":
        return torch.stack([r, c], dim=-1).reshape(-1, 2)
    raise ValueError(f"unknown grid {grid!r}; use 'xy' or 'ij'")


def render(net: Network, shape: tuple[int, int]) -> torch.Tensor:
    """Render an INR (batch) to images: ``(*batch, C, H, W)`` with C = ``spec.layout[-1]``."""
    spec = net.spec
    if spec.layout[0] != 2:
        raise ValueError(f"render() needs a 2-D input INR, got layout {spec.layout}")
    coords = coordinate_grid(shape, spec.grid, net.weights[0].dtype).to(net.weights[0].device)
    out = mlp_forward(spec, net.weights, net.biases, coords)  # (*batch, H*W, C)
    out = out.reshape(*out.shape[:-2], shape[0], shape[1], spec.layout[-1])
    return out.movedim(-1, -3)


def cnn_forward(
    spec: NetworkSpec,
    weights: tuple[torch.Tensor, ...],
    biases: tuple[torch.Tensor, ...],
    images: torch.Tensor,
    *,
    after_conv: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run a batch of B CNNs, each on its own images, or one CNN on a batch of images.

    ``after_conv(h, layer)``, if given, transforms each conv layer's activated output
    ``(M, B * C, H, W)`` (training uses it for channel dropout).

    Shapes:
        weights[l]: ``(B, out, in, kh, kw)`` / ``(B, out, in)`` or without the B axis.
        images: ``(B, M, C, H, W)`` (M images per network) or ``(M, C, H, W)`` for one network.
        returns: logits ``(B, M, n_out)`` or ``(M, n_out)``.
    """
    single = weights[0].dim() == (4 if spec.layer_kinds[0] == "conv" else 2)
    if single:
        weights = tuple(w.unsqueeze(0) for w in weights)
        biases = tuple(b.unsqueeze(0) for b in biases)
        images = images.unsqueeze(0)
    n_nets, m = images.shape[:2]
    # Grouped convolution runs all B networks in one call: channels are (network, channel).
    h = images.transpose(0, 1).reshape(m, n_nets * images.shape[2], *images.shape[3:])
    pooled = False
    residual = dict((i, (j, m)) for j, i, m in spec.residual_pairs())
    activated: list[torch.Tensor] = []
    layers = zip(weights, biases, spec.layer_kinds, spec.activations, strict=True)
    for layer, (w, b, kind, act) in enumerate(layers):
        if kind == "conv":
            h = F.conv2d(
                h,
                w.reshape(-1, *w.shape[2:]),
                b.reshape(-1),
                stride=spec.conv_stride,
                padding=spec.conv_padding,
                groups=n_nets,
            )
            if layer in residual:
                source, tied = residual[layer]
                h = _add_residual(h, activated[source], n_nets, tied)
            h = activate(h, act, spec.omega0)
            activated.append(h)
            if after_conv is not None:
                h = after_conv(h, layer)
            continue
        if not pooled and spec.is_cnn:
            h = h.mean(dim=(-2, -1)).reshape(m, n_nets, -1).transpose(0, 1)  # (B, M, C)
            pooled = True
        h = activate(torch.matmul(h, w.transpose(-1, -2)) + b.unsqueeze(-2), act, spec.omega0)
    out = h + spec.output_offset
    return out[0] if single else out


def _add_residual(h: torch.Tensor, source: torch.Tensor, n_nets: int, m: int) -> torch.Tensor:
    """``h[:, net, :m] += source[:, net, :m]`` for every network, channels grouped by network."""
    hv = h.reshape(h.shape[0], n_nets, -1, *h.shape[2:])
    sv = source.reshape(source.shape[0], n_nets, -1, *source.shape[2:])
    pad = hv.shape[2] - m
    added = torch.cat([sv[:, :, :m], sv.new_zeros(*sv.shape[:2], pad, *sv.shape[3:])], dim=2)
    return (hv + added).reshape(h.shape)
