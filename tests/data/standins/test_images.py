"""The stand-in images: real digits, drawn glyphs, CNN-zoo inputs."""

import torch

from scalegmn.data.standins import images


def test_digit_images_are_the_sklearn_digits_upsampled():
    gen = torch.Generator().manual_seed(0)
    digits, labels = images.load_digits()
    pool = torch.arange(10)  # the first ten digits, each used once: no shift
    u8, y = images.digit_images(10, gen, pool=pool, blur=0.0)
    assert u8.dtype == torch.uint8 and u8.shape == (10, 28, 28)
    # MNIST-like padding: a 20x20 box centred in 28x28, empty border
    assert u8[:, :4].max() == 0 and u8[:, -4:].max() == 0
    # each image is its digit: compare to the upsampled original of the same label
    ref = (images._upsample_digits(digits[:10], 20) * 255).round().to(torch.uint8)
    for k in range(10):
        match = [j for j in range(10) if torch.equal(u8[k, 4:24, 4:24], ref[j])]
        assert match and labels[match[0]] == y[k]


def test_anti_aliasing_ramps_edges_and_keeps_the_ink():
    step = torch.zeros(1, 28, 28, dtype=torch.float64)
    step[:, 8:20, 8:20] = 1.0
    soft = images.anti_alias(step, images.ANTI_ALIAS_SIGMA)
    # the ink is kept (the square is far from the border) and the edge now ramps
    assert torch.allclose(soft.sum(), step.sum())
    assert 0.2 < float(soft[0, 14, 8]) < 0.8 and float(soft[0, 14, 14]) > 0.99
    # control: no blur is the identity
    assert torch.equal(images.anti_alias(step, 0.0), step)
    # the shipped digits are the blurred upsampled digits
    pool = torch.arange(4)
    sharp, _ = images.digit_images(4, torch.Generator().manual_seed(0), pool=pool, blur=0.0)
    soft_u8, _ = images.digit_images(4, torch.Generator().manual_seed(0), pool=pool)
    expected = images.anti_alias(sharp.double() / 255, images.ANTI_ALIAS_SIGMA)
    assert (soft_u8.double() / 255 - expected).abs().max() < 1.5 / 255


def test_reused_digits_are_shifted_not_copied():
    gen = torch.Generator().manual_seed(1)
    u8, _ = images.digit_images(6, gen, pool=torch.arange(3))
    flat = {bytes(u8[k].flatten().tolist()) for k in range(6)}
    assert len(flat) > 3  # reuses of a digit differ from its first use


def test_digit_pools_are_disjoint():
    train, test = images.split_digit_pool(100, torch.Generator().manual_seed(0))
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert len(train) + len(test) == 1797 and len(test) == 100


def test_glyphs_are_deterministic_and_classes_differ():
    a, la = images.glyph_images(200, torch.Generator().manual_seed(3))
    b, lb = images.glyph_images(200, torch.Generator().manual_seed(3))
    c, _ = images.glyph_images(200, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert (
        a.shape == (200, 28, 28) and a.dtype == torch.uint8 and set(la.tolist()) == set(range(10))
    )
    # classes have different mean images (e.g. disc vs ring vs plus)
    means = torch.stack([a[la == k].float().mean(0) for k in range(10)])
    dist = torch.cdist(means.flatten(1), means.flatten(1))
    assert dist[~torch.eye(10, dtype=torch.bool)].min() > 50.0


def test_colour_glyphs_and_zoo_inputs_shapes_and_ranges():
    gen = torch.Generator().manual_seed(0)
    rgb, labels = images.colour_glyph_images(8, gen)
    assert rgb.shape == (8, 32, 32, 3) and rgb.dtype == torch.uint8 and labels.shape == (8,)
    for kind in ("svhn", "cifar10"):
        x, y = images.zoo_images(kind, 8, gen)
        assert x.shape == (8, 1, 32, 32) and y.shape == (8,)
        assert x.min() >= -1.0 and x.max() <= 1.0 and x.std() > 0.1
