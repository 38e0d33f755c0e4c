"""Train-only augmentation: extra copies of each training network under random symmetries.

Each copy applies a uniformly random permutation of every hidden layer and a valid random
scaling (signs for sine/tanh, positive log-uniform factors for ReLU) through
:mod:`scalegmn.weightspace.symmetry`, and is checked to compute the same function as its original
(rendered image for INRs, logits on random images for CNNs). The CIFAR10-INR "aug" copies
(new SIRENs fit to the same images) are joined by row selection in the cache stage.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from scalegmn.weightspace.functional import cnn_forward, render
from scalegmn.weightspace.network import Network
from scalegmn.weightspace.symmetry import (
    permute_hidden,
    random_permutations,
    random_scales,
    scale_hidden,
    scale_kind,
)

logger = logging.getLogger(__name__)

TOLERANCE = 1e-4


def _rows(net: Network, rows: torch.Tensor) -> Network:
    return net.replace(weights=tuple(w[rows] for w in net.weights), biases=tuple(b[rows] for b in net.biases))


def outputs(net: Network, *, generator: torch.Generator | None = None, n_images: int = 4) -> torch.Tensor:
    """What the networks compute, in float64: rendered images (INRs) or logits on fixed images."""
    net64 = net.to(torch.float64)
    if net.spec.is_cnn:
        g = generator or torch.Generator().manual_seed(0)
        images = torch.rand(n_images, net.spec.layout[0], 32, 32, generator=g, dtype=torch.float64) * 2 - 1
        images = images.expand(net.batch_shape[0], *images.shape)
        return cnn_forward(net.spec, net64.weights, net64.biases, images).flatten(1)
    shape = (28, 28) if net.spec.layout[-1] == 1 else (32, 32)
    return render(net64, shape).flatten(1)


def function_difference(before: Network, after: Network, *, block: int = 256) -> torch.Tensor:
    """``(B,)`` max |f - f'| / (1 + max |f|) between two batches of networks."""
    n = before.batch_shape[0]
    out = torch.empty(n, dtype=torch.float64)
    for lo in range(0, n, block):
        rows = torch.arange(lo, min(lo + block, n))
        g = torch.Generator().manual_seed(lo)
        fa = outputs(_rows(before, rows), generator=g)
        g = torch.Generator().manual_seed(lo)
        fb = outputs(_rows(after, rows), generator=g)
        out[rows] = (fa - fb).abs().amax(1) / (1 + fa.abs().amax(1))
    return out


def symmetry_copies(net: Network, copies: int, *, seed: int = 0) -> Network:
    """``copies`` random-symmetry copies of every network of a batch: copy-major ``(copies*B, ...)``.

    Raises ValueError if a copy does not compute the same function (that would be a bug).
    """
    if copies == 0:
        return _rows(net, torch.arange(0))
    g = torch.Generator().manual_seed(seed)
    kind = scale_kind(net.spec.hidden_activation)
    n = net.batch_shape[0]
    parts = []
    for c in range(copies):
        q = random_scales(net.spec, g, kind, (n,), dtype=torch.float64)
        out = scale_hidden(net.to(torch.float64), q)
        out = permute_hidden(out, random_permutations(net.spec, g, (n,)))
        out = out.to(net.weights[0].dtype)
        diff = function_difference(net, out)
        if n and float(diff.max()) > TOLERANCE:
            raise ValueError(f"symmetry copy {c} changed a network's function by {float(diff.max()):.3g}")
        logger.info("symmetry copy %d/%d: max relative function change %.2g", c + 1, copies,
                    float(diff.max()) if n else 0.0)
        parts.append(out)
    return Network(
        net.spec,
        tuple(torch.cat([p.weights[i] for p in parts]) for i in range(net.spec.n_layers)),
        tuple(torch.cat([p.biases[i] for p in parts]) for i in range(net.spec.n_layers)),
    )


def symmetry_copies_mixed(net: Network, activations: np.ndarray, copies: int, *, seed: int = 0) -> Network:
    """As :func:`symmetry_copies` for a batch whose networks differ in hidden activation.

    ``net.spec`` gives the layout; ``activations[i]`` the hidden activation of network i.
    Output order: copy-major, then the original network order.
    """
    n = net.batch_shape[0]
    out_w = [torch.empty((copies * n, *w.shape[1:]), dtype=w.dtype) for w in net.weights]
    out_b = [torch.empty((copies * n, *b.shape[1:]), dtype=b.dtype) for b in net.biases]
    for j, act in enumerate(sorted(set(activations.tolist()))):
        rows = torch.from_numpy(np.flatnonzero(activations == act))
        part = _rows(net, rows).replace(spec=net.spec.with_activation(act))
        aug = symmetry_copies(part, copies, seed=seed + 1000 * j)
        for c in range(copies):
            dest = rows + c * n
            for i in range(net.spec.n_layers):
                out_w[i][dest] = aug.weights[i][c * len(rows) : (c + 1) * len(rows)]
                out_b[i][dest] = aug.biases[i][c * len(rows) : (c + 1) * len(rows)]
    return Network(net.spec, tuple(out_w), tuple(out_b))
