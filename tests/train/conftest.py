"""In-memory splits (:class:`scalegmn.data.split_protocol.MemorySplit`) and stand-in models, so the loop is
tested without the data stages or the model library (they have their own tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scalegmn.data.cache import StoreContent, write_store
from scalegmn.data.split_protocol import MemorySplit
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network, NetworkSpec, dws_siren_spec


def _zoo(n: int, spec: NetworkSpec, gen: torch.Generator) -> Network:
    ws = tuple(torch.randn(n, *spec.weight_shape(i), generator=gen) * 0.5 for i in range(spec.n_layers))
    bs = tuple(torch.randn(n, *spec.bias_shape(i), generator=gen) * 0.1 for i in range(spec.n_layers))
    return Network(spec, ws, bs)


def make_splits(task: str, sizes=(48, 16, 16), seed: int = 0) -> dict[str, MemorySplit]:
    gen = torch.Generator().manual_seed(seed)
    spec = dws_siren_spec() if task == "editing" else NetworkSpec((2, 4, 3), ("relu", "identity"))
    out = {}
    for name, n in zip(("train", "val", "test"), sizes, strict=True):
        net = _zoo(n, spec, gen)
        if task == "classification":
            y = (net.flat()[:, 0] > 0).long() + 2 * (net.flat()[:, 1] > 0).long()
            out[name] = MemorySplit(net, y, n_classes=4)
        elif task == "generalization":
            y = torch.sigmoid(net.flat()[:, :3].sum(-1))
            out[name] = MemorySplit(net, y)
        else:
            out[name] = MemorySplit(net, None)
    return out


class FlatModel(torch.nn.Module):
    """Invariant task model: an MLP with dropout on the flattened parameters."""

    def __init__(self, spec: NetworkSpec, n_outputs: int):
        super().__init__()
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(spec.num_params, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, n_outputs)
        )

    def forward(self, batch: WeightBatch) -> torch.Tensor:
        return self.mlp(batch.net.flat())


class ScaleEditModel(torch.nn.Module):
    """Editing model: per-layer learned scalings of the weights, with dropout noise."""

    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(spec.n_layers))
        self.c = torch.nn.Parameter(torch.zeros(spec.n_layers))
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, batch: WeightBatch):
        dw = tuple(self.drop(self.a[i] * w) for i, w in enumerate(batch.net.weights))
        db = tuple(self.c[i] * b for i, b in enumerate(batch.net.biases))
        return dw, db


@pytest.fixture
def splits_for():
    return make_splits


@pytest.fixture
def model_for():
    def build(task: str, splits, seed: int = 0):
        torch.manual_seed(seed)
        spec = splits["train"].spec
        if task == "editing":
            return ScaleEditModel(spec)
        n_out = {"classification": splits["train"].n_classes, "embedding": 4}.get(task, 1)
        return FlatModel(spec, n_out)

    return build


def write_job_stores(root: Path, sizes: dict[str, int], seed: int = 0) -> dict[str, Path]:
    """Cached train/val/test stores of random DWS SIRENs with a 2-class label and random
    images, for whole train jobs (``run_job``)."""
    gen = torch.Generator().manual_seed(seed)
    spec = dws_siren_spec()
    out = {}
    for split, n in sizes.items():
        ws = tuple(torch.randn(n, *spec.weight_shape(i), generator=gen) * 0.3 for i in range(spec.n_layers))
        bs = tuple(torch.randn(n, *spec.bias_shape(i), generator=gen) * 0.1 for i in range(spec.n_layers))
        net = Network(spec, ws, bs)
        y = (net.biases[-1][:, 0] > 0).numpy().astype(np.int64)
        imgs = (torch.rand(n, 28, 28, generator=gen) * 255).numpy().astype(np.uint8)
        out[split] = write_store(
            root / f"{split}.zarr",
            StoreContent([net], y, np.array(["sine"] * n), np.array([f"net{i}" for i in range(n)]), np.arange(n), imgs),
            {"view": "test", "split": split, "n_classes": 2},
        )
    return out
