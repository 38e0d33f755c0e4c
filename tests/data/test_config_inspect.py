"""DATA config validation (one-line errors naming the key) and `scalegmn inspect`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalegmn.cli import main
from scalegmn.data.cache import StoreContent, write_store
from scalegmn.data.config import DataConfig
from scalegmn.errors import ConfigError
from scalegmn.weightspace.network import cnn_zoo_spec, dws_siren_spec

GOOD = {
    "datasets": {
        "mnist_inr": {"source": "standin", "standin": {"size": "tiny", "seed": 1}, "canonicalize": "phase"},
        "cifar10_gs": {"source": "download"},
        "cifar10_inr": {"source": "local", "local": {"path": "/data/siren_cifar_wts"}},
    },
    "views": {
        "mnist": {"dataset": "mnist_inr", "symmetry_copies": 1},
        "gs_both": {"dataset": "cifar10_gs", "activation": "both"},
        "cifar_aug": {"dataset": "cifar10_inr", "aug_copies": 2},
    },
}


def test_good_config_and_defaults():
    c = DataConfig.from_mapping(GOOD)
    assert c.datasets["mnist_inr"].standin.size == "tiny"
    assert c.datasets["cifar10_gs"].download.urls[0].startswith("https://storage.googleapis.com/")
    assert c.datasets["cifar10_gs"].download.urls[1].endswith("cifar10_split.csv")
    assert c.views["gs_both"].activation == "both"
    # Key order does not change the canonical params.
    reordered = {"views": dict(reversed(GOOD["views"].items())),
                 "datasets": {k: dict(reversed(v.items())) for k, v in reversed(GOOD["datasets"].items())}}
    c2 = DataConfig.from_mapping(reordered)
    assert all(c.datasets[n].acquire_params() == c2.datasets[n].acquire_params() for n in c.datasets)
    assert all(c.views[n].params() == c2.views[n].params() for n in c.views)


@pytest.mark.parametrize(
    "patch, key, words",
    [
        ({"datasets": {"mnist_inr": {"canonicalise": "phase"}}}, "datasets.mnist_inr.canonicalise",
         "did you mean 'canonicalize'"),
        ({"datasets": {"mnist_inr": {"canonicalize": "phse"}}}, "datasets.mnist_inr.canonicalize", "'phase'"),
        ({"datasets": {"mnst_inr": {}}}, "datasets.mnst_inr", "mnist_inr"),
        ({"datasets": {"cifar10_gs": {"canonicalize": "phase"}}}, "datasets.cifar10_gs.canonicalize", "sine INRs"),
        ({"datasets": {"svhn_gs": {"download": {"urls": [
            "https://storage.cloud.google.com/gresearch/smallcnnzoo-dataset/svhn_cropped.tar.xz"]}}}},
         "datasets.svhn_gs.download.urls[0]", "viewer page"),
        ({"datasets": {"svhn_gs": {"download": {"sha256": "abc"}}}}, "datasets.svhn_gs.download.sha256[0]", "64-hex"),
        ({"datasets": {"svhn_gs": {"download": {"sha256": [None]}}}}, "datasets.svhn_gs.download.sha256",
         "one checksum"),
        ({"datasets": {"mnist_inr": {"source": "local"}}}, "datasets.mnist_inr.local.path", "give the archive"),
        ({"datasets": {"mnist_inr": {"standin": {"size": "huge"}}}}, "datasets.mnist_inr.standin.size", "tiny"),
        ({"datasets": {"svhn_gs": {"standin": {"size": {"n_run": 5}}}}}, "datasets.svhn_gs.standin.size.n_run",
         "n_runs"),
        ({"datasets": {"mnist_inr": {}}, "views": {"m": {"dataset": "fmnist_inr"}}}, "views.m.dataset", "not under"),
        ({"datasets": {"mnist_inr": {}}, "views": {"m": {"dataset": "mnist_inr", "activation": "relu"}}},
         "views.m.activation", "Small CNN Zoo"),
        ({"datasets": {"svhn_gs": {}}, "views": {"s": {"dataset": "svhn_gs"}}}, "views.s.activation", "relu"),
        ({"datasets": {"mnist_inr": {}}, "views": {"m": {"dataset": "mnist_inr", "symetry_copies": 1}}},
         "views.m.symetry_copies", "did you mean 'symmetry_copies'"),
    ],
)
def test_config_errors_name_the_key(patch, key, words):
    with pytest.raises(ConfigError) as err:
        DataConfig.from_mapping(patch)
    msg = str(err.value)
    assert msg.startswith(f"config key '{key}'") and words in msg and "\n" not in msg


def _store(tmp_path, spec, y, acts):
    import torch

    g = torch.Generator().manual_seed(0)
    n = len(y)
    from scalegmn.weightspace.network import Network

    net = Network(spec, tuple(torch.randn(n, *spec.weight_shape(i), generator=g) * 0.1 for i in range(spec.n_layers)),
                  tuple(torch.randn(n, *spec.bias_shape(i), generator=g) * 0.01 for i in range(spec.n_layers)))
    content = StoreContent(nets=[net], y=np.asarray(y), activation=np.array(acts),
                           source=np.array([f"s{i}" for i in range(n)]), table_row=np.arange(n))
    return write_store(tmp_path / "s.zarr", content, {"view": "v", "split": "train", "dataset": "d"})


def test_inspect_json_and_render(tmp_path, capsys):
    path = _store(tmp_path, dws_siren_spec(), np.arange(6) % 3, ["sine"] * 6)
    assert main(["inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["networks"] == 6 and s["labels"]["counts"] == {"0": 2, "1": 2, "2": 2}
    arrays = {a["name"]: a for a in s["arrays"]}
    hidden = arrays["arch/0/weight_1"]  # edge block of the 32 x 32 hidden layer
    assert hidden["shape"] == [6, 32, 32] and hidden["shards"] is not None
    assert hidden["bytes_raw"] == 6 * 32 * 32 * 4
    check = s["architectures"][0]["canonicalization_check"]
    assert check["applies"] and check["original_script_is_identity"]
    assert s["provenance"]["view"] == "v"
    assert main(["inspect", str(path), "--render", "2", "--out", str(tmp_path / "n.png")]) == 0
    assert (tmp_path / "n.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["inspect", str(path)]) == 0
    assert "layer 0: weight mean" in capsys.readouterr().out


def test_inspect_cnn_render_and_bad_index(tmp_path, capsys):
    path = _store(tmp_path, cnn_zoo_spec("relu"), np.linspace(0, 1, 3).astype(np.float32), ["relu", "tanh", "relu"])
    assert main(["inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["labels"]["kind"] == "regression" and s["mixed_activations"]
    assert main(["inspect", str(path), "--render", "0", "--out", str(tmp_path / "k.png")]) == 0
    assert main(["inspect", str(path), "--render", "9", "--out", str(tmp_path / "x.png")]) == 2
    assert "networks 0..2" in capsys.readouterr().err
