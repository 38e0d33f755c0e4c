"""Offline images for the stand-in zoos: real handwritten digits and procedurally drawn glyphs.

- :func:`digit_images`: the 1,797 real 8x8 digits shipped with scikit-learn, upsampled to
  MNIST's 20x20 box inside a 28x28 frame (uint8). Reused digits get a small random shift.
- :func:`glyph_images`: 10 classes of shapes (disc, ring, square, frame, triangle, plus,
  cross, bars, chevron, T) drawn from signed distance functions with random pose, size and
  stroke width; grayscale 28x28 (Fashion-MNIST stand-in) or colour 32x32 on a textured
  background (CIFAR-10 stand-in).
- :func:`zoo_images`: 32x32 grayscale images in [-1, 1], as the Small CNN Zoo feeds its CNNs,
  for the SVHN stand-in (digits with clutter and colour) or the CIFAR-10 stand-in (glyphs).

All functions are deterministic for a ``torch.Generator`` and vectorised over images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

N_CLASSES = 10
GLYPH_CLASSES = (
    "disc",
    "ring",
    "square",
    "frame",
    "triangle",
    "plus",
    "cross",
    "bars",
    "chevron",
    "tee",
)


# ------------------------------------------------------------------------------------------
# handwritten digits
# ------------------------------------------------------------------------------------------
def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 scikit-learn digits as float ``(N, 8, 8)`` in [0, 1] and int labels ``(N,)``."""
    from sklearn.datasets import load_digits as sk_load_digits  # local: sklearn is slow to import

    data = sk_load_digits()
    images = torch.from_numpy(np.asarray(data.images, dtype=np.float32) / 16.0)
    return images, torch.from_numpy(np.asarray(data.target, dtype=np.int64))


def _upsample_digits(digits: torch.Tensor, box: int) -> torch.Tensor:
    """``(N, 8, 8)`` in [0, 1] -> ``(N, box, box)`` in [0, 1] (bicubic, clipped)."""
    up = F.interpolate(digits.unsqueeze(1), size=(box, box), mode="bicubic", align_corners=False)
    return up.squeeze(1).clamp(0.0, 1.0)


def _place(small: torch.Tensor, size: int, shifts: torch.Tensor) -> torch.Tensor:
    """Paste ``(N, b, b)`` centred into ``(N, size, size)`` zeros, moved by ``shifts (N, 2)``."""
    n, box = small.shape[0], small.shape[-1]
    out = torch.zeros(n, size, size, dtype=small.dtype)
    off = (size - box) // 2
    for dy in shifts[:, 0].unique().tolist():  # a handful of distinct shifts, not one per image
        for dx in shifts[:, 1].unique().tolist():
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            if sel.any():
                out[sel, off + dy : off + dy + box, off + dx : off + dx + box] = small[sel]
    return out


#: Gaussian blur (pixels) of the INR stand-ins' images. MNIST's digits were anti-aliased when
#: size-normalised, so their edges ramp over a pixel or two; the upsampled 8x8 digits and the
#: glyphs drawn here have harder edges (the 20x20 box's border, clipped bicubic overshoot,
#: glyph outlines). With this blur the shipped fitting recipe reaches a mean above 35 dB in
#: 1,000 steps (36.2 / 35.9 dB on 48 digits / glyphs, against 30.0 / 28 dB unblurred;
#: benchmarks/fit_recipes.py --anti-alias 0 shows the unblurred figures).
ANTI_ALIAS_SIGMA = 0.8


def anti_alias(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, H, W)`` float images (zero padding: dark borders)."""
    if sigma <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = images.unsqueeze(1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0)), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius)), kernel.view(1, 1, -1, 1))
    return x.squeeze(1)


def digit_images(
    n: int,
    gen: torch.Generator,
    *,
    pool: torch.Tensor | None = None,
    blur: float = ANTI_ALIAS_SIGMA,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` MNIST-like digits: uint8 ``(n, 28, 28)`` and labels ``(n,)``.

    Each 8x8 digit is upsampled to 20x20 and centred in 28x28, like MNIST's padding, with
    values 0..255, then anti-aliased with a Gaussian blur of ``blur`` pixels
    (:data:`ANTI_ALIAS_SIGMA`; 0: none). The digits are drawn without repetition from ``pool`` (indices into the
    scikit-learn set; default all), in a random order; once the pool is used up it is drawn
    again, and every reuse is shifted by 1-2 pixels so no two images are identical copies.
    """
    digits, labels = load_digits()
    pool = torch.arange(len(digits)) if pool is None else pool
    order = torch.cat(
        [pool[torch.randperm(len(pool), generator=gen)] for _ in range(-(-n // len(pool)))]
    )[:n]
    reused = torch.arange(n) >= len(pool)
    shifts = torch.randint(-2, 3, (n, 2), generator=gen) * reused.unsqueeze(1)
    images = anti_alias(_place(_upsample_digits(digits[order], 20), 28, shifts), blur)
    return (images.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8), labels[order]


def split_digit_pool(n_test: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint scikit-learn digit indices for train and test images (test gets up to 1/6)."""
    perm = torch.randperm(1797, generator=gen)
    n_test_pool = max(1, min(n_test, 1797 // 6))
    return perm[n_test_pool:], perm[:n_test_pool]


# ------------------------------------------------------------------------------------------
# glyphs from signed distance functions
# ------------------------------------------------------------------------------------------
def _segment(
    px: torch.Tensor, py: torch.Tensor, a: tuple[float, float], b: tuple[float, float]
) -> torch.Tensor:
    """Distance from points to the segment a-b."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0)
    return torch.hypot(px - ax - t * dx, py - ay - t * dy)


def _box(px: torch.Tensor, py: torch.Tensor, half: float) -> torch.Tensor:
    qx, qy = px.abs() - half, py.abs() - half
    outside = torch.hypot(qx.clamp_min(0.0), qy.clamp_min(0.0))
    return outside + torch.maximum(qx, qy).clamp_max(0.0)


def _triangle(px: torch.Tensor, py: torch.Tensor, r: float) -> torch.Tensor:
    """Signed distance to an upright equilateral triangle with circumradius ``r`` (approx.)."""
    # intersection of three half-planes, as the max of their signed distances
    d = None
    for angle in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
        nx, ny = -math.cos(angle), math.sin(angle)  # outward normal, y pointing down
        plane = px * nx + py * ny - r / 2
        d = plane if d is None else torch.maximum(d, plane)
    return d


def _glyph_sdf(cls: int, px: torch.Tensor, py: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) of glyph class ``cls`` at unit size; ``width`` is the
    stroke half-width per image, broadcast against the points."""
    name = GLYPH_CLASSES[cls]
    if name == "disc":
        return torch.hypot(px, py) - 0.8
    if name == "ring":
        return (torch.hypot(px, py) - 0.75).abs() - width
    if name == "square":
        return _box(px, py, 0.65)
    if name == "frame":
        return _box(px, py, 0.65).abs() - width
    if name == "triangle":
        return _triangle(px, py, 0.95)
    if name == "plus":
        return (
            torch.minimum(
                _segment(px, py, (-0.8, 0), (0.8, 0)), _segment(px, py, (0, -0.8), (0, 0.8))
            )
            - width
        )
    if name == "cross":
        return (
            torch.minimum(
                _segment(px, py, (-0.65, -0.65), (0.65, 0.65)),
                _segment(px, py, (-0.65, 0.65), (0.65, -0.65)),
            )
            - width
        )
    if name == "bars":
        return (
            torch.minimum(
                _segment(px, py, (-0.75, -0.4), (0.75, -0.4)),
                _segment(px, py, (-0.75, 0.4), (0.75, 0.4)),
            )
            - width
        )
    if name == "chevron":
        return (
            torch.minimum(
                _segment(px, py, (-0.7, -0.5), (0.0, 0.5)),
                _segment(px, py, (0.0, 0.5), (0.7, -0.5)),
            )
            - width
        )
    # tee
    return (
        torch.minimum(
            _segment(px, py, (-0.75, -0.6), (0.75, -0.6)), _segment(px, py, (0.0, -0.6), (0.0, 0.8))
        )
        - width
    )


def glyph_masks(
    labels: torch.Tensor, size: int, gen: torch.Generator, *, max_rotation: float = 30.0
) -> torch.Tensor:
    """Soft masks in [0, 1] of one glyph per label, with random pose: ``(n, size, size)``.

    Pose: rotation within ±``max_rotation`` degrees, scale 0.45-0.8 of the frame, translation
    within ±0.15, stroke half-width 0.08-0.2 (in glyph units), and a stretch up to 25%.
    """
    n = labels.shape[0]
    lin = torch.linspace(-1.0, 1.0, size)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")  # y down the rows, x along the columns
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(max_rotation)
    scale = 0.45 + 0.35 * torch.rand(n, generator=gen)
    stretch = 1.0 + 0.25 * (torch.rand(n, generator=gen) * 2 - 1)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.15
    width = 0.08 + 0.12 * torch.rand(n, generator=gen)
    # inverse pose: frame coordinates -> glyph coordinates
    cx = gx.unsqueeze(0) - shift[:, 0, None, None]
    cy = gy.unsqueeze(0) - shift[:, 1, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    px = (cos * cx + sin * cy) / (scale * stretch)[:, None, None]
    py = (-sin * cx + cos * cy) / (scale / stretch)[:, None, None]
    sdf = torch.empty(n, size, size)
    for cls in range(N_CLASSES):
        sel = labels == cls
        if sel.any():
            sdf[sel] = _glyph_sdf(cls, px[sel], py[sel], width[sel, None, None])
    # anti-aliased edge about one pixel wide, measured in frame units
    edge = 2.0 / size / scale[:, None, None]
    return (0.5 - sdf / edge).clamp(0.0, 1.0)


def _smooth_noise(
    n: int, channels: int, size: int, cells: int, gen: torch.Generator
) -> torch.Tensor:
    """Low-frequency noise in [0, 1]: random ``cells x cells`` grid, bicubic-upsampled."""
    coarse = torch.rand(n, channels, cells, cells, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def glyph_images(
    n: int, gen: torch.Generator, *, blur: float = ANTI_ALIAS_SIGMA
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST stand-in: uint8 ``(n, 28, 28)`` grayscale glyphs and labels ``(n,)``.

    Dark background; the glyph has a random brightness (140-255) and a smooth texture, plus
    mild pixel noise; then anti-aliased with a Gaussian blur of ``blur`` pixels (Fashion-MNIST
    images are downsampled photographs, with soft edges).
    """
    labels = torch.randint(0, N_CLASSES, (n,), generator=gen)
    mask = glyph_masks(labels, 28, gen)
    bright = 140.0 + 115.0 * torch.rand(n, 1, 1, generator=gen)
    texture = 0.75 + 0.25 * _smooth_noise(n, 1, 28, 4, gen).squeeze(1)
    noise = 6.0 * torch.randn(n, 28, 28, generator=gen)
    images = anti_alias(mask * bright * texture + noise * mask, blur).clamp(0.0, 255.0)
    return images.round().to(torch.uint8), labels


#: A foreground colour per class (RGB in [0, 1]): real CIFAR-10 classes differ in colour
#: statistics as well as in shape (sky behind planes, green behind frogs).
CLASS_COLOURS = torch.tensor([
    [0.90, 0.20, 0.20], [0.20, 0.80, 0.25], [0.25, 0.35, 0.95], [0.95, 0.85, 0.20],
    [0.85, 0.30, 0.85], [0.20, 0.85, 0.85], [0.95, 0.55, 0.15], [0.55, 0.25, 0.75],
    [0.60, 0.85, 0.40], [0.85, 0.85, 0.85],
])


def colour_glyph_images(
    n: int, gen: torch.Generator, *, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 stand-in: uint8 ``(n, 32, 32, 3)`` colour glyphs (HWC, RGB) and labels ``(n,)``.

    The glyph's shape and its colour (the class colour, blended 35% with a random one) depend
    on the class; the background is a random colour of minimum contrast with a smooth
    gradient, and both carry some texture.
    """
    if labels is None:
        labels = torch.randint(0, N_CLASSES, (n,), generator=gen)
    mask = glyph_masks(labels, 32, gen).unsqueeze(1)  # (n, 1, 32, 32)
    fg = 0.65 * CLASS_COLOURS[labels].view(n, 3, 1, 1) + 0.35 * torch.rand(n, 3, 1, 1, generator=gen)
    bg = torch.rand(n, 3, 1, 1, generator=gen)
    # dark background behind a bright glyph and vice versa, so every glyph stays visible
    bright_fg = fg.mean(dim=1, keepdim=True) > 0.5
    bg = bg * 0.6 + torch.where(bright_fg, 0.0, 0.4)
    background = bg * (0.7 + 0.6 * _smooth_noise(n, 3, 32, 3, gen))
    foreground = fg * (0.8 + 0.4 * _smooth_noise(n, 1, 32, 5, gen))
    images = mask * foreground + (1 - mask) * background
    images = images + 0.02 * torch.randn(images.shape, generator=gen)
    images = (images.clamp(0, 1) * 255.0).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).contiguous(), labels


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1] (ToTensor), channels kept where they are."""
    return images.to(torch.float32) / 255.0


# ------------------------------------------------------------------------------------------
# Small CNN Zoo inputs
# ------------------------------------------------------------------------------------------
def zoo_images(kind: str, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Grayscale 32x32 inputs in [-1, 1] for the CNN zoos: ``(n, 1, 32, 32)`` and labels.

    Args:
        kind: ``"svhn"`` (real digits, 22x22 in the frame, random colours, neighbouring-digit
            clutter at the sides, noise) or ``"cifar10"`` (coloured glyphs on a textured
            background with a random line as clutter), both averaged to gray like the zoo's
            preprocessing. Mostly light-on-dark, so the tiny CNNs learn within a short budget.
        n: number of images.
        gen: random generator of every choice (digits, colours, clutter, noise).
    """
    if kind == "svhn":
        digits, all_labels = load_digits()
        pick = torch.randint(0, len(digits), (n,), generator=gen)
        side = torch.randint(0, len(digits), (n, 2), generator=gen)
        labels = all_labels[pick]
        big = _upsample_digits(digits, 22)  # (1797, 22, 22)
        mask = torch.zeros(n, 32, 32)
        shift = torch.randint(-2, 3, (n, 2), generator=gen)
        mask += _place(big[pick], 32, shift)
        # distractor digits cut by the frame, as in SVHN crops
        left = _place(big[side[:, 0]], 32, torch.zeros(n, 2, dtype=torch.long))
        right = left.new_zeros(n, 32, 32)
        right[:, :, 24:] = _place(big[side[:, 1]], 32, torch.zeros(n, 2, dtype=torch.long))[
            :, :, 5:13
        ]
        clutter = left.new_zeros(n, 32, 32)
        clutter[:, :, :6] = left[:, :, 19:25]
        mask = (mask + 0.15 * clutter + 0.15 * right).clamp(0, 1).unsqueeze(1)
        # light digits on dark ground in 90% of the images, the reverse in the rest
        dark = 0.35 * torch.rand(n, 3, 1, 1, generator=gen)
        light = 0.65 + 0.35 * torch.rand(n, 3, 1, 1, generator=gen)
        light_digit = torch.rand(n, 1, 1, 1, generator=gen) < 0.9
        fg, bg = torch.where(light_digit, light, dark), torch.where(light_digit, dark, light)
        rgb = mask * fg + (1 - mask) * bg * (0.8 + 0.4 * _smooth_noise(n, 3, 32, 3, gen))
    elif kind == "cifar10":
        labels = torch.randint(0, N_CLASSES, (n,), generator=gen)
        mask = glyph_masks(labels, 32, gen, max_rotation=15.0).unsqueeze(1)
        dark = 0.35 * torch.rand(n, 3, 1, 1, generator=gen)
        light = 0.65 + 0.35 * torch.rand(n, 3, 1, 1, generator=gen)
        light_glyph = torch.rand(n, 1, 1, 1, generator=gen) < 0.9
        fg, bg = torch.where(light_glyph, light, dark), torch.where(light_glyph, dark, light)
        rgb = mask * fg + (1 - mask) * bg * (0.7 + 0.6 * _smooth_noise(n, 3, 32, 3, gen))
        # a random straight stroke as clutter
        lin = torch.linspace(-1.0, 1.0, 32)
        gy, gx = torch.meshgrid(lin, lin, indexing="ij")
        theta = torch.rand(n, 1, 1, generator=gen) * math.pi
        offset = torch.rand(n, 1, 1, generator=gen) * 2 - 1
        line = ((gx * torch.cos(theta) + gy * torch.sin(theta) - offset).abs() < 0.06).float()
        shade = torch.rand(n, 3, 1, 1, generator=gen)
        rgb = rgb * (1 - 0.4 * line.unsqueeze(1)) + 0.4 * line.unsqueeze(1) * shade
    else:
        raise ValueError(f"zoo_images(): unknown kind {kind!r}; use 'svhn' or 'cifar10'")
    rgb = (rgb + 0.03 * torch.randn(rgb.shape, generator=gen)).clamp(0, 1)
    gray = (rgb * 2.0 - 1.0).mean(dim=1, keepdim=True)  # [-1, 1], then average RGB
    return gray, labels
