"""Stores built block by block within a memory budget equal the in-memory build; the streamed
reader (scalegmn.data.stream) gives every network of a store exactly once, pinned on CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalegmn.data import cache
from scalegmn.data.cache import StoreContent, build_cache, load_split, write_store
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.network_set import read_network_set
from scalegmn.data.splits import make_splits, write_splits
from scalegmn.data.stream import StreamedSplit, open_split, store_bytes
from scalegmn.weightspace.network import dws_siren_spec
from scalegmn.weightspace.testing import random_network

TINY_MB = 0.05  # far below a third of the test tables: forces the block-by-block build


def _table(root, tmp_path, dataset, fmt):
    ingest_dataset(root, tmp_path / f"{dataset}.h5", tmp_path / "q.tsv", dataset=dataset, fmt=fmt)
    write_splits(tmp_path / f"{dataset}.json", make_splits(read_network_set(tmp_path / f"{dataset}.h5")))
    return tmp_path / f"{dataset}.h5", tmp_path / f"{dataset}.json"


def _same(a, b, *, weights: bool = True) -> None:
    assert a.size == b.size and a.sources == b.sources and torch.equal(a.y, b.y)
    assert (a.sign_mask is None) == (b.sign_mask is None)
    if a.sign_mask is not None:
        assert torch.equal(a.sign_mask, b.sign_mask)
    assert a.specs == b.specs and a.attrs["counts"] == b.attrs["counts"]
    if weights:
        for x, y in zip([*a.weights[0], *a.biases[0]], [*b.weights[0], *b.biases[0]], strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize("split", ["train", "val"])
def test_block_build_equals_the_in_memory_build(cifar_root, tmp_path, split, monkeypatch):
    table, splits = _table(cifar_root, tmp_path, "cifar10_inr", "cifar_inr")
    view = {"name": "aug", "dataset": "cifar10_inr", "aug_copies": 2}
    build_cache(table, splits, tmp_path / "mem.zarr", view=view, split=split, provenance={})
    monkeypatch.setattr(cache, "CHUNK_NETWORKS", 1)  # blocks of 1 network: several per split
    calls = []
    original = cache._table_blocks
    monkeypatch.setattr(cache, "_table_blocks", lambda *a: calls.append(a[-1]) or original(*a))
    build_cache(table, splits, tmp_path / "blk.zarr", view=view, split=split, provenance={}, memory_mb=TINY_MB)
    assert calls and calls[0] < load_split(tmp_path / "mem.zarr").size  # control: it did stream
    _same(load_split(tmp_path / "mem.zarr"), load_split(tmp_path / "blk.zarr"))


def test_block_build_of_a_mixed_zoo_with_symmetry_copies(zoo_root, tmp_path, monkeypatch):
    """Symmetry copies are drawn per block (other draws), so only the columns are compared;
    every copy still computes its original's function (checked by symmetry_copies itself)."""
    table, splits = _table(zoo_root, tmp_path, "cifar10_gs", "cnn_zoo")
    view = {"name": "v", "dataset": "cifar10_gs", "activation": "both", "symmetry_copies": 2, "seed": 0}
    build_cache(table, splits, tmp_path / "mem.zarr", view=view, split="train", provenance={})
    monkeypatch.setattr(cache, "CHUNK_NETWORKS", 4)
    build_cache(table, splits, tmp_path / "blk.zarr", view=view, split="train", provenance={}, memory_mb=TINY_MB)
    mem, blk = load_split(tmp_path / "mem.zarr"), load_split(tmp_path / "blk.zarr")
    _same(mem, blk, weights=False)
    n = mem.size // 3
    for x, y in zip(mem.weights[0], blk.weights[0], strict=True):
        assert torch.equal(x[:n], y[:n])  # the originals are the same networks
        assert not torch.equal(x[n:], x[:n].repeat(2, *[1] * (x.ndim - 1)))  # copies moved


def _store(tmp_path, n: int, sign_mask: bool = False):
    net = random_network(dws_siren_spec(), (n,), scale=0.1, dtype=torch.float32)
    acts = np.where(np.arange(n) % 3 == 0, "tanh", "relu") if sign_mask else np.full(n, "sine")
    content = StoreContent(nets=[net], y=np.arange(n, dtype=np.int64) % 10, activation=acts,
                           source=np.array([f"n{i}" for i in range(n)]), table_row=np.arange(n))
    write_store(tmp_path / "s.zarr", content, {"n_classes": 10})
    return tmp_path / "s.zarr", net


@pytest.mark.parametrize("shuffle", [False, True])
def test_streamed_batches_cover_every_network_once(tmp_path, shuffle):
    path, net = _store(tmp_path, 203, sign_mask=True)
    resident = load_split(path)
    streamed = StreamedSplit(path, block_networks=64, prefetch=2)
    seen = []
    for batch in streamed.batches(16, shuffle=shuffle, generator=torch.Generator().manual_seed(0)):
        ref = resident.get(batch.index)
        assert torch.equal(batch.net.weights[1], ref.net.weights[1]) and torch.equal(batch.y, ref.y)
        assert torch.equal(batch.sign_mask, ref.sign_mask)
        seen.append(batch.index)
    rows = torch.cat(seen)
    assert sorted(rows.tolist()) == list(range(203))
    assert (rows.tolist() != list(range(203))) == shuffle  # control: shuffling reorders
    assert all(len(s) == 16 for s in seen[:-1])  # block remainders carried: full batches


def test_streamed_get_and_open_split_pick_by_budget(tmp_path):
    path, _ = _store(tmp_path, 40)
    streamed = StreamedSplit(path)
    resident = load_split(path)
    idx = torch.tensor([3, 5, 17])
    assert torch.equal(streamed.get(idx).net.biases[0], resident.get(idx).net.biases[0])
    mb = store_bytes(path) / 2**20
    assert isinstance(open_split(path, max_resident_mb=mb * 2), type(resident))
    assert isinstance(open_split(path, max_resident_mb=mb / 2), StreamedSplit)


@pytest.mark.cuda
def test_streamed_batches_arrive_on_cuda_from_pinned_blocks(tmp_path):
    path, _ = _store(tmp_path, 100)
    streamed = StreamedSplit(path, device="cuda", block_networks=32)
    tensors, _ = streamed._read(0, 32)
    assert all(t.is_pinned() for t in tensors)
    batches = list(streamed.batches(16, shuffle=True))
    assert all(b.net.weights[0].is_cuda for b in batches) and sum(b.size for b in batches) == 100
