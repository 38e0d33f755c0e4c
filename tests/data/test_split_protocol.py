"""Every split training, evaluation and prediction read is a ``scalegmn.data.split_protocol.Split``."""

from __future__ import annotations

import numpy as np
import torch

from scalegmn.data.cache import StoreContent, load_split, write_store
from scalegmn.data.split_protocol import MemorySplit, Split
from scalegmn.weightspace.network import Network, NetworkSpec


def _net(n: int) -> Network:
    spec = NetworkSpec((2, 3, 1), ("relu", "identity"))
    g = torch.Generator().manual_seed(0)
    return Network(spec, tuple(torch.randn(n, *spec.weight_shape(i), generator=g) for i in range(spec.n_layers)),
                   tuple(torch.randn(n, *spec.bias_shape(i), generator=g) for i in range(spec.n_layers)))


def test_a_cached_split_and_a_memory_split_are_splits_and_agree(tmp_path):
    net, y = _net(5), np.arange(5) % 2
    content = StoreContent([net], y, np.array(["relu"] * 5), np.array([f"net{i}" for i in range(5)]), np.arange(5))
    cached = load_split(write_store(tmp_path / "s.zarr", content, {"n_classes": 2}))
    memory = MemorySplit(net, torch.as_tensor(y), n_classes=2)
    assert isinstance(cached, Split) and isinstance(memory, Split)
    assert cached.sources == list(memory.sources) and cached.size == memory.size == 5
    a, b = cached.get(torch.tensor([3, 1])), memory.get(torch.tensor([3, 1]))
    assert all(torch.equal(u, v) for u, v in zip(a.net.weights + a.net.biases, b.net.weights + b.net.biases, strict=True))
    assert torch.equal(a.y, b.y) and torch.equal(a.index, b.index)
