"""Fixtures for the format tests: random networks of each zoo architecture."""

from __future__ import annotations

import pytest
import torch

from scalegmn.weightspace.network import Network, NetworkSpec


def make_network(spec: NetworkSpec, *batch: int, dtype: torch.dtype = torch.float32) -> Network:
    """A network (or batch) of ``spec`` with random, distinct parameters."""
    return Network(
        spec,
        tuple(
            torch.randn(*batch, *spec.weight_shape(i), dtype=dtype) for i in range(spec.n_layers)
        ),
        tuple(torch.randn(*batch, *spec.bias_shape(i), dtype=dtype) for i in range(spec.n_layers)),
    )


@pytest.fixture
def random_network():
    return make_network
