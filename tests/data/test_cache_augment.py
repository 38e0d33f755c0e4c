"""The zarr cache round trip, the in-memory loader, views and symmetry augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from scalegmn.data.augment import function_difference, symmetry_copies, symmetry_copies_mixed
from scalegmn.data.cache import StoreContent, build_cache, load_split, write_store
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.network_set import read_network_set
from scalegmn.data.splits import make_splits, write_splits
from scalegmn.errors import DataError
from scalegmn.weightspace.network import (
    Network,
    cnn_zoo_spec,
    dws_siren_spec,
    nfn_siren_spec,
    stack,
)


def ingest(root, out, quarantine, **kw):
    """Ingest, then read the whole table back."""
    ingest_dataset(root, out, quarantine, **kw)
    return read_network_set(out)


def _content(nets: list[Network], y) -> StoreContent:
    n = sum(int(x.batch_shape[0]) for x in nets)
    return StoreContent(nets=nets, y=np.asarray(y), activation=np.array(
        [x.spec.hidden_activation for x in nets for _ in range(int(x.batch_shape[0]))]),
        source=np.array([f"n{i}" for i in range(n)]), table_row=np.arange(n))


def test_store_round_trip_is_exact(tmp_path, make_networks):
    net = stack(make_networks(dws_siren_spec(), 70, seed=0))
    write_store(tmp_path / "s.zarr", _content([net], np.arange(70) % 10), {"n_classes": 10})
    split = load_split(tmp_path / "s.zarr")
    assert split.size == 70 and split.spec == dws_siren_spec() and split.task_kind == "classification"
    assert split.sign_mask is None and split.images is None and split.n_classes == 10
    batch = split.get([3, 65])
    assert torch.equal(batch.net.weights[1], net.weights[1][[3, 65]])
    assert torch.equal(batch.net.biases[2], net.biases[2][[3, 65]])
    assert batch.y.tolist() == [3, 5]
    seen = torch.cat([b.index for b in split.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(70))
    assert sum(b.size for b in split.batches(16, shuffle=False, drop_last=True)) == 64
    # Every array explains itself; arrays are sharded.
    root = zarr.open_group(tmp_path / "s.zarr", mode="r")
    for name in ("arch/0/weight_0", "arch/0/bias_2", "arch/0/rows", "y", "source", "arch_id", "sign_mask"):
        assert root[name].attrs["description"]
    assert root["arch/0/weight_1"].shards is not None and root["arch/0/weight_1"].shape == (70, 32, 32)
    assert not (tmp_path / "s.zarr.tmp").exists()


def test_mixed_layouts_need_groups(tmp_path, make_networks):
    a = stack(make_networks(dws_siren_spec(), 5, seed=1))
    b = stack(make_networks(nfn_siren_spec(), 3, seed=2))
    write_store(tmp_path / "m.zarr", _content([a, b], np.arange(8) % 3), {})
    split = load_split(tmp_path / "m.zarr")
    with pytest.raises(DataError, match="groups"):
        _ = split.spec
    g0, g1 = split.groups()
    assert g0.spec == dws_siren_spec() and g1.spec == nfn_siren_spec()
    assert torch.equal(g1.get([2]).net.weights[2][0], b.weights[2][2])
    assert g1.y.tolist() == [5 % 3, 6 % 3, 7 % 3]


def test_hetero_zoo_sign_mask(tmp_path, make_networks):
    relu = stack(make_networks(cnn_zoo_spec("relu"), 4, seed=3))
    content = _content([relu], np.linspace(0, 1, 4).astype(np.float32))
    content.activation = np.array(["relu", "tanh", "tanh", "relu"])
    write_store(tmp_path / "h.zarr", content, {})
    split = load_split(tmp_path / "h.zarr")
    assert split.task_kind == "regression" and split.y.dtype == torch.float32
    assert split.spec.hidden_activation == "relu"
    assert split.get([0, 1, 2]).sign_mask.tolist() == [False, True, True]


def test_empty_split_loads_with_shapes(tmp_path, make_networks):
    """A view's activation filter can leave a split empty: it loads, with the right shapes."""
    net = stack(make_networks(cnn_zoo_spec("tanh"), 2, seed=6))
    empty = net.replace(weights=tuple(w[:0] for w in net.weights), biases=tuple(b[:0] for b in net.biases))
    write_store(tmp_path / "e.zarr", _content([empty], np.zeros(0, np.float32)), {})
    split = load_split(tmp_path / "e.zarr")
    assert split.size == 0 and split.spec == cnn_zoo_spec("tanh") and list(split.batches(4, shuffle=True)) == []
    assert split.weights[0][1].shape == (0, *cnn_zoo_spec("tanh").weight_shape(1))


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="cache store"):
        load_split(tmp_path / "nope.zarr")


def test_a_store_of_an_older_format_is_a_one_line_error_saying_to_rebuild(tmp_path, make_networks):
    store = tmp_path / "s.zarr"
    write_store(store, _content([stack(make_networks(dws_siren_spec(), 2, seed=0))], np.arange(2)), {})
    root = zarr.open_group(store, mode="r+")
    root.attrs["format_version"] = 1  # flat per-graph node_feat/edge_feat, before the graph blocks
    with pytest.raises(DataError) as err:
        load_split(store)
    message = str(err.value)
    assert message.startswith(f"{store}: ") and "delete it and rebuild it" in message and "\n" not in message


@pytest.mark.parametrize("damage", ["metadata", "shard", "array"])
def test_corrupt_store_is_a_one_line_error_naming_it(damage, tmp_path, make_networks):
    import shutil

    store = tmp_path / "s.zarr"
    write_store(store, _content([stack(make_networks(dws_siren_spec(), 4, seed=0))], np.arange(4)), {})
    if damage == "metadata":
        (store / "zarr.json").write_text("{not json")
    elif damage == "shard":
        shard = next(p for p in (store / "arch" / "0" / "weight_1").rglob("*") if p.is_file() and p.name != "zarr.json")
        shard.write_bytes(shard.read_bytes()[:50])
    else:
        shutil.rmtree(store / "arch" / "0" / "bias_0")
    with pytest.raises(DataError) as err:
        load_split(store)
    message = str(err.value)
    assert message.startswith(f"{store}: ") and "cache store" in message and "\n" not in message


@pytest.mark.parametrize("spec_fn", [dws_siren_spec, lambda: cnn_zoo_spec("relu"), lambda: cnn_zoo_spec("tanh")])
def test_symmetry_copies_preserve_function_and_move_weights(spec_fn, make_networks):
    net = stack(make_networks(spec_fn(), 6, seed=4)).to(torch.float64)  # float64: tight tolerance
    aug = symmetry_copies(net, 2, seed=0)
    assert aug.batch_shape == (12,) and aug.weights[0].dtype == torch.float64
    for c in range(2):
        part = aug.replace(weights=tuple(w[c * 6:(c + 1) * 6] for w in aug.weights),
                           biases=tuple(b[c * 6:(c + 1) * 6] for b in aug.biases))
        assert float(function_difference(net, part).max()) < 1e-10
        assert not torch.allclose(part.weights[0], net.weights[0])
    # Control: an uncoupled permutation (rows of layer 0 only) changes the function.
    perm = torch.randperm(net.spec.layout[1])
    bad = net.replace(weights=(net.weights[0][:, perm], *net.weights[1:]),
                      biases=(net.biases[0][:, perm], *net.biases[1:]))
    assert float(function_difference(net, bad).max()) > 1e-3


def test_symmetry_copies_mixed_keeps_each_activation(make_networks):
    net = stack(make_networks(cnn_zoo_spec("relu"), 6, seed=5)).to(torch.float64)
    acts = np.array(["relu", "tanh"] * 3)
    aug = symmetry_copies_mixed(net, acts, 1, seed=0)
    for act in ("relu", "tanh"):
        rows = torch.from_numpy(np.flatnonzero(acts == act))
        spec = net.spec.with_activation(act)
        a = Network(spec, tuple(w[rows] for w in net.weights), tuple(b[rows] for b in net.biases))
        b = Network(spec, tuple(w[rows] for w in aug.weights), tuple(b_[rows] for b_ in aug.biases))
        assert float(function_difference(a, b).max()) < 1e-10
    # Control: tanh networks scaled by a positive non-unit factor change their function.
    tanh = Network(cnn_zoo_spec("tanh"), net.weights, net.biases)
    scaled = tanh.replace(weights=(net.weights[0] * 2, net.weights[1] / 2, *net.weights[2:]),
                          biases=(net.biases[0] * 2, *net.biases[1:]))
    assert float(function_difference(tanh, scaled).max()) > 1e-3


def test_views_filter_and_augment(zoo_root, cifar_root, tmp_path):
    t = ingest(zoo_root, tmp_path / "z.h5", tmp_path / "q.tsv", dataset="cifar10_gs", fmt="cnn_zoo")
    write_splits(tmp_path / "zs.json", make_splits(t))
    prov = {"config_hash": "x"}
    for act in ("relu", "tanh", "both"):
        view = {"name": f"v_{act}", "dataset": "cifar10_gs", "activation": act, "symmetry_copies": 1, "seed": 0}
        build_cache(tmp_path / "z.h5", tmp_path / "zs.json", tmp_path / f"{act}.zarr", view=view,
                    split="train", provenance=prov)
        s = load_split(tmp_path / f"{act}.zarr")
        n_train = len(make_splits(t)["train"])
        if act == "both":
            assert s.size == 2 * n_train and s.sign_mask is not None
        else:
            assert s.spec.hidden_activation == act and s.sign_mask is None
            assert 0 < s.size < 2 * n_train
        assert s.attrs["augmentation"]["symmetry_copies"] == 1 and s.attrs["config_hash"] == "x"
        assert any(src.endswith("#sym1") for src in s.sources)
    # Validation splits are never augmented.
    view = {"name": "v", "dataset": "cifar10_gs", "activation": "both", "symmetry_copies": 3}
    build_cache(tmp_path / "z.h5", tmp_path / "zs.json", tmp_path / "val.zarr", view=view, split="val", provenance={})
    assert load_split(tmp_path / "val.zarr").size == len(make_splits(t)["val"])

    c = ingest(cifar_root, tmp_path / "c.h5", tmp_path / "q2.tsv", dataset="cifar10_inr", fmt="cifar_inr")
    write_splits(tmp_path / "cs.json", make_splits(c))
    view = {"name": "cifar10_aug", "dataset": "cifar10_inr", "aug_copies": 2}
    build_cache(tmp_path / "c.h5", tmp_path / "cs.json", tmp_path / "aug.zarr", view=view, split="train", provenance={})
    s = load_split(tmp_path / "aug.zarr")
    assert s.size == 18 * 3 and s.task_kind == "classification" and s.n_classes == 10
    view["aug_copies"] = 3
    with pytest.raises(DataError, match="aug copies"):
        build_cache(tmp_path / "c.h5", tmp_path / "cs.json", tmp_path / "aug3.zarr", view=view, split="train",
                    provenance={})


def test_mnist_store_has_images(mnist_root, tmp_path):
    t = ingest(mnist_root, tmp_path / "m.h5", tmp_path / "q.tsv", dataset="mnist_inr", fmt="mnist_inr")
    write_splits(tmp_path / "s.json", make_splits(t))
    build_cache(tmp_path / "m.h5", tmp_path / "s.json", tmp_path / "t.zarr", view={"name": "mnist"},
                split="test", provenance={})
    s = load_split(tmp_path / "t.zarr")
    assert s.images.shape == (6, 1, 28, 28) and float(s.images.max()) <= 1.0
    row = int(make_splits(t)["test"][0])
    assert torch.allclose(s.images[0, 0], torch.from_numpy(t.extras["images"][row]).float() / 255)
