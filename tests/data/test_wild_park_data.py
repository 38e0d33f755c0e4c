"""CNN Wild Park through the data stages: acquire (download, local), ingest into the flat table,
split file, canonicalize (none), the flat cache store and the MixedSplit loader."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from scalegmn.data import acquire
from scalegmn.data.cache import build_view_stores, load_split, write_store
from scalegmn.data.canonicalize import canonicalize_file
from scalegmn.data.config import DataConfig
from scalegmn.data.formats import wild_park
from scalegmn.data.formats.detect import detect_file_format, detect_format
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.network_set import is_flat_table, network_set_spec, read_flat_network_set
from scalegmn.data.split_protocol import MixedSplit
from scalegmn.data.splits import make_splits_file
from scalegmn.data.standins.zoos import build_standin
from scalegmn.errors import DataError
from scalegmn.weightspace.batch import MixedBatch
from scalegmn.weightspace.network import Network, stack
from tests.data.test_acquire import Server


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """The tiny stand-in (6 runs x 3 checkpoints, seconds to build)."""
    root = tmp_path_factory.mktemp("wp") / "cnn_wild_park"
    build_standin("cnn_wild_park", root, size="tiny", seed=0)
    return root


def _stages(root: Path, out: Path, **kw) -> tuple[dict, dict]:
    out.mkdir(parents=True, exist_ok=True)
    summary = ingest_dataset(root, out / "weights.h5", out / "quarantine.tsv", dataset="cnn_wild_park",
                             fmt="wild_park", **kw)
    splits = make_splits_file(out / "weights.h5", out / "splits.json")
    return summary, splits


def _equal(a: Network, b: Network) -> bool:
    return a.spec == b.spec and all(torch.equal(x, y) for x, y in zip((*a.weights, *a.biases),
                                                                       (*b.weights, *b.biases), strict=True))


def test_detect(zoo):
    assert detect_format(zoo) == "wild_park"
    assert detect_file_format(wild_park.list_files(zoo)[0]) == "wild_park"


def test_ingest_splits_cache_and_loader(zoo, tmp_path):
    summary, splits = _stages(zoo, tmp_path)
    files = wild_park.list_files(zoo)
    assert summary["n_networks"] == len(files) == 18 and summary["n_architectures"] == 6
    assert is_flat_table(tmp_path / "weights.h5")
    with pytest.raises(DataError, match="several architectures"):
        network_set_spec(tmp_path / "weights.h5")
    table = read_flat_network_set(tmp_path / "weights.h5")
    # the table holds exactly what the files hold
    for rows, group in table.groups(np.arange(table.size)):
        for r, net in zip(rows.tolist(), [Network(group.spec, tuple(w[k] for w in group.weights),
                                                  tuple(b[k] for b in group.biases)) for k in range(len(rows))],
                          strict=True):
            assert _equal(net, wild_park.read_network(table.columns["source"][r]))
    # the split file decides, whole runs per split, every checkpoint once
    official = wild_park.read_splits(zoo / wild_park.SPLITS_FILE)
    assert splits["method"].startswith("split file")
    run = table.columns["run"]
    for name in ("train", "val", "test"):
        assert sorted(table.columns["relpath"][splits[name]].tolist()) == sorted(
            wild_park.split_key(p) for p in official[name].path)
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == list(range(18))
    assert not set(run[splits["train"]]) & set(run[splits["test"]])
    canonicalize_file(tmp_path / "weights.h5", tmp_path / "canonical.h5", tmp_path / "canonical.json", mode="none")
    outs = {s: tmp_path / f"{s}.zarr" for s in ("train", "val", "test")}
    attrs = build_view_stores(tmp_path / "canonical.h5", tmp_path / "splits.json", outs,
                              view={"name": "wp", "dataset": "cnn_wild_park", "symmetry_copies": 2}, provenance={})
    assert attrs["train"]["counts"]["symmetry_copies_skipped"] == 2
    split = load_split(outs["train"])
    assert isinstance(split, MixedSplit) and split.is_mixed and split.size == len(splits["train"])
    assert split.task_kind == "regression"
    np.testing.assert_array_equal(split.y.numpy(), table.columns["target"][splits["train"]])
    seen = []
    for batch in split.batches(5, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert isinstance(batch, MixedBatch) and batch.size == len(batch.index) == len(batch.y)
        assert len({g.spec for g in batch.groups}) == len(batch.groups)  # one group per architecture
        lo = 0
        for g, n in zip(batch.groups, batch.group_sizes, strict=True):
            for k, i in enumerate(batch.index[lo: lo + n].tolist()):
                row = splits["train"][i]
                one = Network(g.spec, tuple(w[k] for w in g.weights), tuple(b[k] for b in g.biases))
                assert _equal(one, wild_park.read_network(table.columns["source"][row]))
                assert batch.y[lo + k] == table.columns["target"][row]
            lo += n
        seen += batch.index.tolist()
    assert sorted(seen) == list(range(split.size))
    loaded = [b.size for b in split.loader(4, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert sum(loaded) == split.size
    with pytest.raises(DataError, match="specs"):
        _ = split.spec


def test_without_split_file_whole_runs_are_drawn(zoo, tmp_path):
    root = tmp_path / "cnn_wild_park"
    shutil.copytree(zoo, root)
    (root / wild_park.SPLITS_FILE).unlink()
    _, splits = _stages(root, tmp_path / "out")
    assert splits["method"].startswith("seeded")
    run = read_flat_network_set(tmp_path / "out" / "weights.h5", arrays=False).columns["run"]
    parts = [set(run[splits[s]]) for s in ("train", "val", "test")]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_bad_checkpoint_quarantined_or_fatal(zoo, tmp_path):
    root = tmp_path / "cnn_wild_park"
    shutil.copytree(zoo, root)
    bad = wild_park.list_files(root)[4]
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        _stages(root, tmp_path / "a")
    assert str(bad) in str(err.value)
    summary, splits = _stages(root, tmp_path / "b", on_bad_file="skip")
    assert summary["quarantined"] == 1 and summary["n_networks"] == 17
    tsv = (tmp_path / "b" / "quarantine.tsv").read_text().splitlines()
    assert len(tsv) == 2 and tsv[1].startswith(str(bad))
    assert sum(len(splits[s]) for s in ("train", "val", "test")) == 17


def test_cached_split_of_grouped_architectures_yields_mixed_batches(tmp_path, make_networks, zoo):
    nets = [wild_park.read_network(p) for p in wild_park.list_files(zoo)[:6]]  # two runs: two architectures
    from scalegmn.data.cache import StoreContent

    groups = {}
    for n in nets:
        groups.setdefault(n.spec, []).append(n)
    stacked = [stack(v) for v in groups.values()]
    content = StoreContent(nets=stacked, y=np.arange(6, dtype=np.float32), activation=np.array(["relu"] * 6),
                           source=np.array([f"n{i}" for i in range(6)]), table_row=np.arange(6))
    write_store(tmp_path / "g.zarr", content, {})
    split = load_split(tmp_path / "g.zarr")
    assert split.is_mixed
    batch = split.get([0, 4, 1])
    assert isinstance(batch, MixedBatch) and batch.group_sizes == (2, 1) and batch.index.tolist() == [0, 1, 4]


def test_memory_split_of_any_networks(zoo):
    nets = [wild_park.read_network(p) for p in wild_park.list_files(zoo)]
    split = MixedSplit.from_networks(nets, y=torch.tensor([n.target for n in nets]))
    assert split.size == 18 and len(split.specs) == 6 and split.sources[0] == nets[0].source
    batch = split.get([17, 0, 3])
    lo = 0
    for g, n in zip(batch.groups, batch.group_sizes, strict=True):
        for k, i in enumerate(batch.index[lo: lo + n].tolist()):
            assert _equal(Network(g.spec, tuple(w[k] for w in g.weights), tuple(b[k] for b in g.biases)), nets[i])
        lo += n


def test_config_entry():
    cfg = DataConfig.from_mapping({"datasets": {"cnn_wild_park": {"source": "download"}},
                                   "views": {"wp": {"dataset": "cnn_wild_park"}}})
    ds = cfg.datasets["cnn_wild_park"]
    assert ds.format == "wild_park" and not ds.is_inr and ds.root_name == "cnn_wild_park"
    assert ds.download.urls == ("https://zenodo.org/records/12797219/files/cnn_wild_park.zip?download=1",)
    with pytest.raises(Exception, match="canonicalize"):
        DataConfig.from_mapping({"datasets": {"cnn_wild_park": {"canonicalize": "phase"}}})
    with pytest.raises(Exception, match="activation"):
        DataConfig.from_mapping({"datasets": {"cnn_wild_park": {}},
                                 "views": {"wp": {"dataset": "cnn_wild_park", "activation": "relu"}}})


def _zip_of(root: Path, top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                z.write(p, f"{top}/{p.relative_to(root)}")
    return buf.getvalue()


@pytest.mark.parametrize("top", ["cnn_wild_park", "cifar10_zooV2"])
def test_download_extract_ingest(zoo, tmp_path, top):
    """The zip from a local HTTP server (top folder named as ours or otherwise), then ingest."""
    with Server({"cnn_wild_park.zip": _zip_of(zoo, top)}) as server:
        folder = acquire.download_all([f"{server.url}/records/1/files/cnn_wild_park.zip?download=1"],
                                      tmp_path / "download", backoff=0)
    root = acquire.prepare_raw({"name": "cnn_wild_park", "source": "download"}, tmp_path / "raw", folder)
    assert root == tmp_path / "raw" / "cnn_wild_park" and detect_format(root) == "wild_park"
    summary, splits = _stages(root, tmp_path / "out")
    assert summary["n_networks"] == 18 and splits["method"].startswith("split file")


def test_local_folder(zoo, tmp_path):
    root = acquire.prepare_raw({"name": "cnn_wild_park", "source": "local", "path": str(zoo.parent)}, tmp_path / "raw")
    assert root.is_symlink() and len(wild_park.list_files(root)) == 18
    with h5py.File(_stages(root, tmp_path / "out")[0] and tmp_path / "out" / "weights.h5") as f:
        assert json.loads(f.attrs["format"]) == "wild_park"


def test_flat_store_size_and_no_streaming(zoo, tmp_path):
    from scalegmn.data.stream import StreamedSplit, open_split, store_bytes

    _stages(zoo, tmp_path)
    build_view_stores(tmp_path / "weights.h5", tmp_path / "splits.json", {"test": tmp_path / "t.zarr"},
                      view={"name": "wp"}, provenance={})
    split = load_split(tmp_path / "t.zarr")
    assert store_bytes(tmp_path / "t.zarr") == split.params.nbytes == 4 * sum(
        split.specs[a].num_params for a in split.arch_id.tolist())
    with pytest.raises(DataError, match="not streamed"):
        StreamedSplit(tmp_path / "t.zarr")
    assert isinstance(open_split(tmp_path / "t.zarr", max_resident_mb=1e6), MixedSplit)
