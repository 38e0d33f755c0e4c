"""Tiny real-format zoos written with the format writers (independent of the stand-in fitter)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from scalegmn.weightspace.network import (
    Network,
    cnn_zoo_spec,
    dws_siren_spec,
    nfn_siren_spec,
    unstack,
)


def random_networks(spec, n: int, seed: int = 0, bias_scale: float = 0.3) -> list[Network]:
    g = torch.Generator().manual_seed(seed)
    w = tuple(torch.randn(n, *spec.weight_shape(i), generator=g) * 0.2 for i in range(spec.n_layers))
    b = tuple((torch.rand(n, *spec.bias_shape(i), generator=g) * 2 - 1) * bias_scale for i in range(spec.n_layers))
    return unstack(Network(spec, w, b))


@pytest.fixture
def make_networks():
    return random_networks


@pytest.fixture
def mnist_root(tmp_path):
    """12 training + 6 testing MNIST INRs with their MNIST/raw digits."""
    from scalegmn.data.formats import mnist_images, mnist_inr

    root = tmp_path / "raw" / "mnist-inrs"
    nets = random_networks(dws_siren_spec(), 18, seed=1)
    rng = np.random.default_rng(0)
    for split, prefix, lo, hi in (("training", "train", 0, 12), ("testing", "t10k", 12, 18)):
        images = rng.integers(0, 256, size=(hi - lo, 28, 28), dtype=np.uint8)
        labels = np.arange(hi - lo) % 10
        mnist_images.write_idx_images(root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte.gz", images)
        mnist_images.write_idx_labels(root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte.gz", labels)
        for j, net in enumerate(nets[lo:hi]):
            mnist_inr.write_network(root, net, split=split, label=int(labels[j]), image_id=j)
    return root


@pytest.fixture
def cifar_root(tmp_path):
    """24 base CIFAR INRs (idx 0..23) and 2 aug copies of the train part."""
    from scalegmn.data.formats import cifar_inr

    root = tmp_path / "raw" / "siren_cifar_wts"
    for i, net in enumerate(random_networks(nfn_siren_spec(), 24, seed=2)):
        cifar_inr.write_network(root, net, label=i % 10, idx=i)
    for k in range(2):
        for i, net in enumerate(random_networks(nfn_siren_spec(), 18, seed=10 + k)):
            cifar_inr.write_network(root, net, label=i % 10, idx=i, aug=k)
    return root


@pytest.fixture
def zoo_root(tmp_path):
    """A Small CNN Zoo of 12 runs x 9 checkpoints, relu and tanh, with an NFN split CSV."""
    from scalegmn.data.formats import cnn_zoo

    root = tmp_path / "raw" / "cifar10"
    runs, steps = 12, [0, 1, 2, 3, 20, 40, 60, 80, 86]
    spec = cnn_zoo_spec("relu")
    nets = random_networks(spec, runs * len(steps), seed=3)
    from scalegmn.weightspace.network import stack

    rows = cnn_zoo.network_to_rows(stack(nets))
    metrics = pd.DataFrame({
        "step": steps * runs,
        "test_accuracy": np.linspace(0.1, 0.9, runs * len(steps)),
        "config.activation": np.repeat(["relu", "tanh"] * (runs // 2), len(steps)),
        "modeldir": np.repeat([f"run{i}" for i in range(runs)], len(steps)),
    })
    cnn_zoo.write_zoo(root, rows.astype(np.float32), metrics)
    perm = np.random.default_rng(0).permutation(len(rows))
    cnn_zoo.write_split_csv(root / "cifar10_split.csv", perm)
    return root


@pytest.fixture
def fmnist_root(tmp_path):
    """10 train + 4 test FMNIST INRs; splits.json takes val = train models 1 and 6."""
    from scalegmn.data.formats import fmnist_inr

    root = tmp_path / "raw" / "fmnist_inrs"
    nets = random_networks(dws_siren_spec(), 14, seed=4)
    for i, net in enumerate(nets[:10]):
        fmnist_inr.write_network(root, net, split="train", index=i, label=i % 10)
    for i, net in enumerate(nets[10:]):
        fmnist_inr.write_network(root, net, split="test", index=i, label=(i + 3) % 10)
    val = [1, 6]
    fmnist_inr.write_splits(root, {
        "train": [f"fmnist_inrs/train/model_{i}.pth" for i in range(10) if i not in val],
        "val": [f"fmnist_inrs/train/model_{i}.pth" for i in val],
        "test": [f"fmnist_inrs/test/model_{i}.pth" for i in range(4)],
    })
    return root
