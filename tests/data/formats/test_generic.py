"""Your own zoo (scalegmn/data/formats/generic.py, docs/datasets.md §12): state dicts or
safetensors + manifest.csv through ingest, splits and cache; one-line errors naming the file,
row or key; the config rules for generic datasets; `scalegmn init-dataset`."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import yaml

from scalegmn.cli import main
from scalegmn.data.cache import build_view_stores, load_split
from scalegmn.data.config import DatasetConfig
from scalegmn.data.formats import generic
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.network_set import read_network_set
from scalegmn.data.splits import make_splits_file
from scalegmn.errors import ConfigError, DataError


def _mlp_sd(g, layout=(4, 8, 3), prefix="layers"):
    sd = {}
    for i, (a, b) in enumerate(zip(layout[:-1], layout[1:], strict=True)):
        sd[f"{prefix}.{i}.weight"] = torch.randn(b, a, generator=g)
        sd[f"{prefix}.{i}.bias"] = torch.randn(b, generator=g)
    return sd


def write_zoo(root, n=20, *, target=False, split=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    (root / "nets").mkdir(parents=True)
    rows = []
    for i in range(n):
        torch.save(_mlp_sd(g), root / "nets" / f"n{i}.pt")
        row = {"file": f"nets/n{i}.pt", ("target" if target else "label"): (i / n if target else i % 3)}
        if split:
            row["split"] = ("train", "train", "val", "test")[i % 4]
        rows.append(row)
    generic.write_manifest(root, rows)
    return root


def test_any_key_names_missing_biases_and_conv_layers_are_read(tmp_path):
    g = torch.Generator().manual_seed(1)
    sd = {"conv.weight": torch.randn(6, 1, 3, 3, generator=g), "conv.bias": torch.randn(6, generator=g),
          "conv2.weight": torch.randn(5, 6, 3, 3, generator=g), "head.weight": torch.randn(2, 5, generator=g),
          "head.bias": torch.randn(2, generator=g), "label": 3}
    net = generic.network_from_tensors(tmp_path / "x.pt", sd, "tanh")
    assert net.spec.layout == (1, 6, 5, 2) and net.spec.layer_kinds == ("conv", "conv", "linear")
    assert net.spec.kernel_size == (3, 3) and net.spec.hidden_activation == "tanh"
    assert torch.equal(net.biases[1], torch.zeros(5)) and torch.equal(net.weights[2], sd["head.weight"])


@pytest.mark.parametrize(("sd", "words"), [
    ({"a.weight": torch.zeros(3, 4), "b.weight": torch.zeros(2, 5)}, "layer 1 takes 5 inputs"),
    ({"a.weight": torch.zeros(3, 4), "odd": torch.zeros(7)}, "key 'odd' of shape [7] is a bias without a weight"),
    ({"a.weight": torch.zeros(3, 4), "a.bias": torch.zeros(2)}, "key 'a.bias' has 2 entries"),
    ({"a.weight": torch.zeros(3, 4, 1)}, "key 'a.weight' of shape [3, 4, 1] is neither"),
    ({"label": 1}, "holds no layer weights"),
    ({"a.weight": torch.full((3, 4), float("nan")), "a.bias": torch.zeros(3)}, "NaN or Inf"),
])
def test_a_bad_state_dict_is_one_line_naming_the_file(tmp_path, sd, words):
    with pytest.raises(DataError) as err:
        generic.network_from_tensors(tmp_path / "bad.pt", sd, "relu")
    assert "bad.pt" in str(err.value) and words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("manifest", "words"), [
    ("file,label\nnets/n0.pt,-1\n", "manifest.csv:2: label must be an int >= 0"),
    ("file,label,target\nnets/n0.pt,1,0.5\n", "exactly one of the columns"),
    ("name,label\nn0.pt,1\n", "no 'file' column"),
    ("file,label,split\nnets/n0.pt,1,training\n", "split 'training'"),
    ("file,label\nnets/n0.txt,1\n", "is not one of .pt"),
    ("file,label,activation\nnets/n0.pt,1,gelu\n", "activation 'gelu'"),
])
def test_a_bad_manifest_is_one_line_naming_the_row(tmp_path, manifest, words):
    (tmp_path / "manifest.csv").write_text(manifest)
    with pytest.raises(DataError) as err:
        generic.read_manifest(tmp_path)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_ingest_splits_and_cache_follow_the_manifest(tmp_path):
    root = write_zoo(tmp_path / "zoo")
    ingest_dataset(root, tmp_path / "w.h5", tmp_path / "q.tsv", dataset="my_zoo", fmt="generic")
    table = read_network_set(tmp_path / "w.h5")
    assert table.attrs["task_kind"] == "classification" and len(table.columns["label"]) == 20
    splits = make_splits_file(tmp_path / "w.h5", tmp_path / "s.json")
    assert splits["train"] == [i for i in range(20) if i % 4 < 2] and splits["test"] == list(range(3, 20, 4))
    build_view_stores(tmp_path / "w.h5", tmp_path / "s.json", {"train": tmp_path / "train.zarr"},
                      view={"name": "my_zoo", "dataset": "my_zoo"}, provenance={})
    split = load_split(tmp_path / "train.zarr")
    assert split.task_kind == "classification" and split.n_classes == 3 and len(split) == 10
    first = torch.load(root / "nets" / "n1.pt")  # train row 1 is network n1
    assert torch.equal(split[1]["weights"][1], first["layers.1.weight"]) and int(split[1]["y"]) == 1


def test_targets_make_a_regression_zoo_and_no_split_column_a_seeded_draw(tmp_path):
    root = write_zoo(tmp_path / "zoo", n=30, target=True, split=False)
    ingest_dataset(root, tmp_path / "w.h5", tmp_path / "q.tsv", dataset="z", fmt="generic")
    splits = make_splits_file(tmp_path / "w.h5", tmp_path / "s.json", seed=3)
    assert splits["counts"] == {"train": 24, "val": 3, "test": 3, "aug": {}}
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == list(range(30))
    assert make_splits_file(tmp_path / "w.h5", tmp_path / "s2.json", seed=4)["train"] != splits["train"]
    build_view_stores(tmp_path / "w.h5", tmp_path / "s.json", {"test": tmp_path / "test.zarr"},
                      view={"name": "z", "dataset": "z"}, provenance={})
    split = load_split(tmp_path / "test.zarr")
    assert split.task_kind == "regression" and np.allclose(split.y.numpy(), [r / 30 for r in splits["test"]])


@pytest.mark.skipif(importlib.util.find_spec("safetensors") is None, reason="safetensors is not installed")
def test_safetensors_files_read_like_state_dicts(tmp_path):
    from safetensors.torch import save_file

    sd = _mlp_sd(torch.Generator().manual_seed(2), layout=(4, *[5] * 10, 3))  # layers.10 after layers.9
    save_file(sd, tmp_path / "n.safetensors")
    generic.write_manifest(tmp_path, [{"file": "n.safetensors", "label": 0}])
    net = generic.read_network(generic.read_manifest(tmp_path)[0])
    assert net.spec.layout == (4, *[5] * 10, 3)
    assert all(torch.equal(net.weights[i], sd[f"layers.{i}.weight"]) for i in range(11))


def test_a_zoo_of_two_layouts_is_refused_by_validate(tmp_path):
    root = write_zoo(tmp_path / "zoo", n=4)
    torch.save(_mlp_sd(torch.Generator().manual_seed(9), layout=(4, 5, 3)), root / "nets" / "n2.pt")
    with pytest.raises(DataError, match="layout \\[4, 5, 3\\] differs"):
        generic.validate(root)


def test_config_any_name_is_generic_the_paper_names_keep_their_formats(tmp_path):
    ds = DatasetConfig.from_mapping("my_zoo", {"source": "local", "local": {"path": str(tmp_path)}})
    assert ds.format == "generic" and ds.root_name == "zoo" and '"format": "generic"' in ds.acquire_params()
    assert DatasetConfig.from_mapping("mnist_inr", {}).acquire_params() == (
        '{"name": "mnist_inr", "seed": 0, "size": "default", "source": "standin"}')  # unchanged: no rerun
    with pytest.raises(ConfigError, match="mnist_inr is in the mnist_inr format"):
        DatasetConfig.from_mapping("mnist_inr", {"format": "generic"})
    with pytest.raises(ConfigError, match="did you mean 'mnist_inr'.*source: local or download") as err:
        DatasetConfig.from_mapping("mnist_inrr", {})
    assert err.value.key == "datasets.mnist_inrr"


def test_init_dataset_validates_and_writes_a_config_block(tmp_path, capsys):
    root = write_zoo(tmp_path / "my zoo")
    assert main(["init-dataset", str(root), "--out", str(tmp_path / "block.yaml")]) == 0
    block = yaml.safe_load((tmp_path / "block.yaml").read_text())
    assert block["datasets"] == {"my_zoo": {"format": "generic", "source": "local", "local": {"path": str(root.resolve())}}}
    assert block["tables"]["my_zoo"]["columns"]["my_zoo"]["model"] == {"symmetry": "scale"}  # relu networks
    (root / "nets" / "n3.pt").write_bytes(b"<html>")
    assert main(["init-dataset", str(root), "--name", "z"]) == 2
    assert "n3.pt" in capsys.readouterr().err
