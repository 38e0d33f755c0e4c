"""The forward passes follow the published conventions, checked against independent computations.

INRs: each pixel computed with explicit Python math under the DWS convention (np.meshgrid
'xy' indexing over np.linspace(-1, 1, 28), output + 0.5) and the NFN one ('ij', no offset,
32x32, 3 outputs). CNNs: logits of torch.nn modules holding the same parameters. Small CNN
Zoo: a flat row laid out by hand, element by element, in TF order.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from scalegmn.data.formats import cnn_zoo
from scalegmn.weightspace.functional import cnn_forward, render
from scalegmn.weightspace.network import (
    Network,
    cnn_zoo_spec,
    dws_siren_spec,
    nfn_siren_spec,
    unstack,
)


def tiny_siren(spec, hidden=(3, 4)):
    """A small SIREN with the conventions of ``spec`` and distinct, asymmetric weights."""
    spec = dataclasses.replace(spec, layout=(2, *hidden, spec.layout[-1]))
    g = torch.Generator().manual_seed(7)
    weights = tuple(
        torch.rand(spec.weight_shape(i), generator=g, dtype=torch.float64) * 0.1 - 0.05
        for i in range(spec.n_layers)
    )
    biases = tuple(
        torch.rand(spec.bias_shape(i), generator=g, dtype=torch.float64) * 0.1 - 0.05
        for i in range(spec.n_layers)
    )
    # x and y feed the first layer very differently, so transposing the grid shows.
    w0 = weights[0].clone()
    w0[:, 0] *= 3.0
    return Network(spec, (w0, *weights[1:]), biases)


def siren_pixels_by_hand(net, coords, offset):
    """sin(30 (W x + b)) per hidden layer, last layer linear, + offset: plain Python floats."""
    ws = [w.tolist() for w in net.weights]
    bs = [b.tolist() for b in net.biases]
    out = []
    for point in coords:
        h = list(point)
        for layer, (w, b) in enumerate(zip(ws, bs, strict=True)):
            z = [sum(w[o][i] * h[i] for i in range(len(h))) + b[o] for o in range(len(b))]
            h = [math.sin(30.0 * v) for v in z] if layer < len(ws) - 1 else z
        out.append([v + offset for v in h])
    return out


def dws_image_by_hand(net, size=28):
    lin = np.linspace(-1, 1, size)
    x, y = np.meshgrid(lin, lin)  # DWS make_coordinates: default 'xy' indexing
    coords = np.stack([x.ravel(), y.ravel()], axis=-1).tolist()
    values = siren_pixels_by_hand(net, coords, offset=0.5)
    return torch.tensor(values, dtype=torch.float64).reshape(size, size, -1).permute(2, 0, 1)


def nfn_image_by_hand(net, size=32):
    lin = np.linspace(-1, 1, size)
    a, b = np.meshgrid(lin, lin, indexing="ij")  # NFN get_mgrid: 'ij' indexing
    coords = np.stack([a.ravel(), b.ravel()], axis=-1).tolist()
    values = siren_pixels_by_hand(net, coords, offset=0.0)
    return torch.tensor(values, dtype=torch.float64).reshape(size, size, -1).permute(2, 0, 1)


def test_render_matches_dws_convention_by_hand():
    net = tiny_siren(dws_siren_spec())
    image = render(net, (28, 28))
    assert image.shape == (1, 28, 28)
    torch.testing.assert_close(image, dws_image_by_hand(net), rtol=0, atol=1e-12)


def test_render_matches_nfn_convention_by_hand():
    net = tiny_siren(nfn_siren_spec())
    image = render(net, (32, 32))
    assert image.shape == (3, 32, 32)
    torch.testing.assert_close(image, nfn_image_by_hand(net), rtol=0, atol=1e-12)


def test_render_full_size_dws_siren_by_hand():
    """The real 2-32-32-1 architecture, on a few pixels of its 28x28 image."""
    spec = dws_siren_spec()
    net = tiny_siren(spec, hidden=(32, 32))
    image = render(net, (28, 28))
    expected = dws_image_by_hand(net)
    for r, c in [(0, 0), (0, 27), (27, 0), (5, 17), (20, 3)]:
        assert abs(float(image[0, r, c] - expected[0, r, c])) < 1e-12


def test_swapping_conventions_changes_the_image():
    """Control: the 'ij' grid, or a missing offset, gives a clearly different image."""
    dws = tiny_siren(dws_siren_spec())
    expected = dws_image_by_hand(dws)
    swapped_grid = dws.replace(spec=dataclasses.replace(dws.spec, grid="ij"))
    no_offset = dws.replace(spec=dataclasses.replace(dws.spec, output_offset=0.0))
    for wrong in (swapped_grid, no_offset):
        assert (render(wrong, (28, 28)) - expected).abs().max() > 1e-2
    nfn = tiny_siren(nfn_siren_spec())
    swapped = nfn.replace(spec=dataclasses.replace(nfn.spec, grid="xy"))
    assert (render(swapped, (32, 32)) - nfn_image_by_hand(nfn)).abs().max() > 1e-2


def zoo_module(activation):
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, stride=2), act(),
        torch.nn.Conv2d(16, 16, 3, stride=2), act(),
        torch.nn.Conv2d(16, 16, 3, stride=2), act(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10),
    ).double()  # fmt: skip


def module_to_network(module, activation):
    layers = [m for m in module if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    return Network(
        cnn_zoo_spec(activation),
        tuple(m.weight.detach().clone() for m in layers),
        tuple(m.bias.detach().clone() for m in layers),
    )


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_cnn_forward_matches_torch_module(activation):
    module = zoo_module(activation)
    images = torch.rand(5, 1, 32, 32, dtype=torch.float64) * 2 - 1
    net = module_to_network(module, activation)
    with torch.no_grad():
        torch.testing.assert_close(
            cnn_forward(net.spec, net.weights, net.biases, images), module(images)
        )


def test_cnn_forward_batched_over_networks_matches_modules():
    modules = [zoo_module("tanh") for _ in range(3)]
    images = torch.rand(3, 4, 1, 32, 32, dtype=torch.float64) * 2 - 1
    nets = [module_to_network(m, "tanh") for m in modules]
    weights = tuple(torch.stack([n.weights[i] for n in nets]) for i in range(4))
    biases = tuple(torch.stack([n.biases[i] for n in nets]) for i in range(4))
    with torch.no_grad():
        logits = cnn_forward(nets[0].spec, weights, biases, images)
        expected = torch.stack([m(x) for m, x in zip(modules, images, strict=True)])
    assert logits.shape == (3, 4, 10)
    torch.testing.assert_close(logits, expected)
    # Control: pairing each network with another network's images changes the logits.
    assert (logits - expected.roll(1, dims=0)).abs().max() > 1e-3


def tf_row_by_hand(net):
    """One zoo row, written element by element from the TF layout (docs/datasets.md §4.3)."""
    row = np.zeros(4970, dtype=np.float32)
    w = [t.numpy() for t in net.weights]
    b = [t.numpy() for t in net.biases]
    bias_start = [0, 160, 2480, 4800]
    kernel_start = [16, 176, 2496, 4810]
    for layer in range(3):  # conv kernel HWIO, C order: index ((h * 3 + x) * I + i) * O + o
        n_out, n_in = w[layer].shape[:2]
        row[bias_start[layer] : bias_start[layer] + n_out] = b[layer]
        for h in range(3):
            for x in range(3):
                for i in range(n_in):
                    for o in range(n_out):
                        flat = ((h * 3 + x) * n_in + i) * n_out + o
                        row[kernel_start[layer] + flat] = w[layer][o, i, h, x]
    row[4800:4810] = b[3]
    for i in range(16):  # dense kernel (in, out), C order
        for o in range(10):
            row[4810 + i * 10 + o] = w[3][o, i]
    return row


def test_zoo_reader_returns_hand_laid_kernels(tmp_path, random_network):
    nets = unstack(random_network(cnn_zoo_spec("relu"), 2))
    rows = np.stack([tf_row_by_hand(n) for n in nets])
    metrics = pd.DataFrame(
        {"step": [86, 86], "test_accuracy": [0.3, 0.5], "config.activation": ["relu", "relu"]}
    )
    cnn_zoo.write_zoo(tmp_path, rows, metrics)
    back = cnn_zoo.rows_to_network(
        cnn_zoo.open_weights(tmp_path), cnn_zoo.read_layout(tmp_path), "relu"
    )
    for k, net in enumerate(nets):
        for got, want in zip(
            (*back.weights, *back.biases), (*net.weights, *net.biases), strict=True
        ):
            assert torch.equal(got[k], want)
    np.testing.assert_array_equal(cnn_zoo.network_to_rows(back), rows)
    # And the read network computes what a torch module with these parameters computes.
    module = zoo_module("relu").float()
    with torch.no_grad():
        for m, w, b in zip(
            [m for m in module if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)],
            nets[1].weights,
            nets[1].biases,
            strict=True,
        ):
            m.weight.copy_(w)
            m.bias.copy_(b)
        images = torch.rand(3, 1, 32, 32) * 2 - 1
        one = unstack(back)[1]
        torch.testing.assert_close(
            cnn_forward(one.spec, one.weights, one.biases, images), module(images)
        )


def test_wrong_layout_order_gives_different_kernels(tmp_path, random_network):
    """Control: a layout listing kernel before bias reads the same row into other tensors."""
    net = random_network(cnn_zoo_spec("relu"))
    row = tf_row_by_hand(net)
    right = cnn_zoo.rows_to_network(row, cnn_zoo.layout_frame(), "relu")
    wrong_layout = pd.DataFrame(
        [
            (r.varname, r.start_idx, r.end_idx, str(r.shape))
            for pair in zip(cnn_zoo.LAYOUT[1::2], cnn_zoo.LAYOUT[0::2], strict=True)
            for r in pair
        ],
        columns=["varname", "start_idx", "end_idx", "shape"],
    )
    # Kernel first, then bias, each starting where the pair starts.
    starts = [0, 160, 2480, 4800]
    offsets = []
    for layer, (k, b) in enumerate(zip(cnn_zoo.LAYOUT[1::2], cnn_zoo.LAYOUT[0::2], strict=True)):
        n_k = k.end_idx - k.start_idx
        offsets += [(starts[layer], starts[layer] + n_k), (starts[layer] + n_k, b.end_idx + n_k)]
    wrong_layout[["start_idx", "end_idx"]] = offsets
    wrong = cnn_zoo.rows_to_network(row, wrong_layout, "relu")
    assert torch.equal(right.weights[1], net.weights[1])
    for got, want in zip(wrong.weights, net.weights, strict=True):
        assert not torch.equal(got, want)
