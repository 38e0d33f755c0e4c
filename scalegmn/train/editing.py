"""INR editing (MNIST dilation): targets, residual edits and rendering.

The original dilates the uint8 digit with a 3x3 ones kernel (one iteration). For an image in
[0, 1] that is exactly a 3x3 max filter with stride 1 and "same" padding, i.e.
``max_pool2d(kernel_size=3, stride=1, padding=1)`` (max_pool pads with -inf, so the border
behaves like cv2's default). The model predicts (dW, db); the edited INR is params + delta,
rendered on the DWS grid (``scalegmn.weightspace.functional.render``: 'xy', +0.5 offset come from the spec).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scalegmn.weightspace.functional import render
from scalegmn.weightspace.network import Network

IMAGE_SHAPE = (28, 28)


def dilate(images: torch.Tensor) -> torch.Tensor:
    """3x3 grey dilation of ``(..., H, W)`` images in [0, 1]."""
    shape = images.shape
    flat = images.reshape(-1, 1, shape[-2], shape[-1])
    return F.max_pool2d(flat, kernel_size=3, stride=1, padding=1).reshape(shape)


def apply_delta(net: Network, delta_weights, delta_biases) -> Network:
    """The edited networks: every weight and bias plus the predicted residual."""
    weights = tuple(w + d for w, d in zip(net.weights, delta_weights, strict=True))
    biases = tuple(b + d for b, d in zip(net.biases, delta_biases, strict=True))
    return Network(net.spec, weights, biases)


def source_images(net: Network, images: torch.Tensor | None, index: torch.Tensor | None) -> torch.Tensor:
    """The images the INRs were fitted to, ``(B, C, H, W)`` in [0, 1].

    When the store carries no original images (a zoo without them), the INR's own rendering,
    clamped to [0, 1], stands in for the image: the task (dilate what the INR draws) is the same.
    """
    if images is not None and index is not None:
        return images[index.to(images.device)].to(net.weights[0].device, net.weights[0].dtype)
    with torch.no_grad():
        return render(net, IMAGE_SHAPE).clamp(0.0, 1.0)


class NoEdit(torch.nn.Module):
    """The editor that changes nothing: its error is that of the unedited INRs, the reference
    every editing model must beat."""

    def forward(self, batch):
        """Zero ``(ΔW, Δb)``, shaped like ``batch.net``'s weights and biases."""
        net = batch.net
        return (tuple(torch.zeros_like(w) for w in net.weights),
                tuple(torch.zeros_like(b) for b in net.biases))


def per_image_mse(rendered: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B,)``: mean over (C, H, W) of the squared error of each image."""
    return (rendered - target).pow(2).flatten(1).mean(dim=1)
