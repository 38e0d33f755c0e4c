"""The README's data-API block, run verbatim on a tiny store, and the Dataset/PyG/weights API."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from scalegmn.data import split_protocol
from scalegmn.data.api import to_pyg, weights
from scalegmn.data.cache import StoreContent, load_split, write_store
from scalegmn.weightspace.graph import from_graph_features
from scalegmn.weightspace.network import cnn_zoo_spec, dws_siren_spec, nfn_siren_spec, stack

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    """The first ```python block after the README's "Data API" heading."""
    text = README.read_text()
    start = text.index("### Data API")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def _store(path, nets, y, activation=None):
    n = sum(int(x.batch_shape[0]) for x in nets)
    act = activation if activation is not None else [x.spec.hidden_activation for x in nets
                                                     for _ in range(int(x.batch_shape[0]))]
    write_store(path, StoreContent(nets=nets, y=np.asarray(y), activation=np.array(act),
                                   source=np.array([f"n{i}" for i in range(n)]), table_row=np.arange(n)),
                {"n_classes": 10})
    return load_split(path)


def test_readme_data_api_block_runs_verbatim(tmp_path, monkeypatch, make_networks):
    net = stack(make_networks(dws_siren_spec(), 70, seed=0))
    (tmp_path / "results" / "cache" / "mnist").mkdir(parents=True)
    _store(tmp_path / "results/cache/mnist/train.zarr", [net], np.arange(70) % 10)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_block(), "README.md (Data API)", "exec"), scope)
    # What the block's comments promise.
    assert out.getvalue().splitlines()[0] == "torch.Size([32, 32, 2]) torch.Size([32])"
    split, graphs, W, b = scope["split"], scope["graphs"], scope["W"], scope["b"]
    assert len(split) == 70 and isinstance(split, torch.utils.data.Dataset)
    assert len(graphs) == 70 and graphs[5].edge_index.shape == (2, 1120) and graphs[5].x.shape == (67, 1)
    assert [w.shape for w in W] == [(32, 2), (32, 32), (1, 32)] and [x.shape for x in b] == [(32,), (32,), (1,)]
    assert all(torch.equal(w, full[0]) for w, full in zip(W, net.weights, strict=True))


def test_dataset_items_collate_and_the_fast_loader_cover_every_row(tmp_path, make_networks):
    net = stack(make_networks(dws_siren_spec(), 20, seed=1))
    split = _store(tmp_path / "s.zarr", [net], np.arange(20) % 10)
    item = split[3]
    assert torch.equal(item["weights"][1], net.weights[1][3]) and int(item["y"]) == 3 and item["index"] == 3
    assert torch.equal(split[-1]["biases"][0], net.biases[0][19])
    with pytest.raises(IndexError):
        split[20]
    plain = next(iter(torch.utils.data.DataLoader(split, batch_size=8)))
    assert plain["weights"][0].shape == (8, 32, 2) and torch.equal(plain["weights"][0], net.weights[0][:8])
    seen = [int(i) for batch in split.loader(6, shuffle=True, generator=torch.Generator().manual_seed(0))
            for i in batch.index]
    assert sorted(seen) == list(range(20)) and seen != list(range(20))
    assert len(split.loader(6, drop_last=True)) == 3


def test_mixed_layouts_batch_by_architecture(tmp_path, make_networks):
    a = stack(make_networks(dws_siren_spec(), 5, seed=1))
    b = stack(make_networks(nfn_siren_spec(), 7, seed=2))
    split = _store(tmp_path / "m.zarr", [a, b], np.arange(12) % 10)
    batches = list(split.loader(4, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert sorted(int(i) for x in batches for i in x.index) == list(range(12))
    assert {x.net.spec for x in batches} == {dws_siren_spec(), nfn_siren_spec()}
    assert len(batches) == len(split.loader(4)) == 2 + 2  # ceil(5/4) + ceil(7/4)
    # Rows of two architectures come as a MixedBatch: one group per architecture, in batch order.
    mixed = split.get([0, 11])
    assert [g.spec for g in mixed.groups] == [dws_siren_spec(), nfn_siren_spec()]
    assert mixed.index.tolist() == [0, 11] and mixed.group_sizes == (1, 1)
    assert torch.equal(mixed.groups[1].weights[0][0], b.weights[0][6])
    W, bias = weights(split, 6)
    assert torch.equal(W[2], b.weights[2][1]) and torch.equal(bias[0], b.biases[0][1])
    graphs = to_pyg(split)
    assert graphs[0].x.shape == (67, 1) and graphs[11].x.shape == (69, 1)


def test_pyg_graphs_round_trip_to_the_weights(tmp_path, make_networks):
    # A CNN: conv kernels flattened into 9 edge channels, input nodes 0 (docs/model.md §1.3).
    net = stack(make_networks(cnn_zoo_spec("relu"), 4, seed=3))
    split = _store(tmp_path / "c.zarr", [net], np.linspace(0.1, 0.9, 4))
    g = to_pyg(split)[2]
    assert g.edge_attr.shape == (688, 9) and float(g.x[0]) == 0.0
    ws, bs = from_graph_features(split.spec, g.x[:, 0], g.edge_attr)
    assert all(torch.equal(w, full[2]) for w, full in zip(ws, net.weights, strict=True))
    assert all(torch.equal(x, full[2]) for x, full in zip(bs, net.biases, strict=True))


def test_the_sampler_refuses_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        split_protocol.ArchitectureBatchSampler(torch.zeros(3, dtype=torch.long), 0)
