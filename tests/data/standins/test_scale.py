"""The ``scale`` stand-in size: the real datasets' sizes with random valid weights, in the real
formats (built here at reduced counts with the same builders), read by ingest and the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalegmn.data.cache import build_view_stores, load_split
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.network_set import read_network_set
from scalegmn.data.splits import make_splits_file
from scalegmn.data.standins import inr_zoos, scale_zoos
from scalegmn.data.standins.sizes import resolve_size
from scalegmn.errors import ConfigError


def test_scale_counts_are_the_real_sizes():
    cifar = resolve_size("cifar10_inr", "scale")
    n_train, _ = inr_zoos.cifar_cut_points(cifar["n_images"])
    assert cifar["n_images"] + cifar["n_aug"] * n_train == 960_000  # 60k + 20 x 45k
    assert resolve_size("cifar10_gs", "scale")["n_runs"] * 9 == 270_000  # weights.npy rows
    assert sum(resolve_size("mnist_inr", "scale")[k] for k in ("n_train", "n_test")) == 70_000
    with pytest.raises(ConfigError, match="no fmnist_inr stand-in"):
        resolve_size("fmnist_inr", "scale")


@pytest.mark.parametrize(("name", "fmt", "counts", "view"), [
    ("mnist_inr", "mnist_inr", {"n_train": 30, "n_test": 6}, {"name": "m"}),
    ("cifar10_inr", "cifar_inr", {"n_images": 24, "n_aug": 2}, {"name": "c", "aug_copies": 2}),
    ("cifar10_gs", "cnn_zoo", {"n_runs": 12}, {"name": "z", "activation": "both"}),
])
def test_scale_builders_write_the_real_formats(tmp_path, name, fmt, counts, view):
    full = {**resolve_size(name, "scale"), **counts}
    root = tmp_path / name
    root.mkdir()
    report = scale_zoos.build_scale(name, root, full, torch.Generator().manual_seed(0))
    assert report["quality"]["random_weights"]
    summary = ingest_dataset(root, tmp_path / "t.h5", tmp_path / "q.tsv", dataset=name, fmt=fmt)
    expected = {"mnist_inr": 36, "cifar10_inr": 24 + 2 * 18, "cifar10_gs": 12}[name]  # zoo: final step only
    assert summary["n_networks"] == expected and summary["quarantined"] == 0
    make_splits_file(tmp_path / "t.h5", tmp_path / "s.json")
    build_view_stores(tmp_path / "t.h5", tmp_path / "s.json", {"train": tmp_path / "train.zarr"}, view=view,
                      provenance={})
    split = load_split(tmp_path / "train.zarr")
    assert split.size > 0 and all(torch.isfinite(t).all() for t in split.weights[0])


def test_scale_inr_table_has_the_columns_ingest_writes(tmp_path, cifar_root):
    scale_zoos.write_scale_inr_table(tmp_path / "direct.h5", n_images=24, n_aug=2)
    ingest_dataset(cifar_root, tmp_path / "ingested.h5", tmp_path / "q.tsv", dataset="cifar10_inr", fmt="cifar_inr")
    direct = read_network_set(tmp_path / "direct.h5", arrays=False)
    ingested = read_network_set(tmp_path / "ingested.h5", arrays=False)
    assert set(direct.columns) == set(ingested.columns)
    assert direct.attrs["format"] == ingested.attrs["format"] and direct.size == 24 + 2 * 18
    assert np.array_equal(np.sort(direct.columns["aug"]), np.repeat([-1, 0, 1], [24, 18, 18]))
