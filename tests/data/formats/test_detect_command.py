"""Format detection and the ``scalegmn read`` command on small zoos of every format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scalegmn.cli import main
from scalegmn.data.formats import cifar_inr, cnn_zoo, fmnist_inr, mnist_inr, wild_park
from scalegmn.data.formats.detect import FORMATS, detect_file_format, detect_format
from scalegmn.data.formats.summary import summarize
from scalegmn.errors import DataError
from scalegmn.weightspace.network import cnn_zoo_spec, dws_siren_spec, nfn_siren_spec, unstack


@pytest.fixture
def zoos(tmp_path, random_network):
    """One tiny zoo per format, plus the paths of a few written files."""
    roots = {name: tmp_path / name for name in FORMATS}
    sirens = unstack(random_network(dws_siren_spec(), 4))
    for i, net in enumerate(sirens):
        mnist_inr.write_network(roots["mnist_inr"], net, split="training", label=i % 2, image_id=i)
        fmnist_inr.write_network(roots["fmnist_inr"], net, split="train", index=i, label=3)
    (roots["mnist_inr"] / "statistics.pth").write_bytes(b"decoy")
    fmnist_inr.write_splits(
        roots["fmnist_inr"],
        {
            "train": ["train/model_0.pth", "train/model_1.pth"],
            "val": ["train/model_2.pth"],
            "test": [],
        },
    )
    for i, net in enumerate(unstack(random_network(nfn_siren_spec(), 3))):
        cifar_inr.write_network(roots["cifar_inr"], net, label=i, idx=i)
        cifar_inr.write_network(roots["cifar_inr"], net, label=i, idx=i, aug=0)
    rows = cnn_zoo.network_to_rows(random_network(cnn_zoo_spec("relu"), 4))
    metrics = pd.DataFrame(
        {
            "step": [0, 86, 0, 86],
            "test_accuracy": [0.1, 0.7, 0.1, 0.4],
            "config.activation": ["relu", "relu", "tanh", "tanh"],
        }
    )
    cnn_zoo.write_zoo(roots["cnn_zoo"], rows, metrics)
    for i, spec in enumerate((cnn_zoo_spec("relu").__class__(
            (3, 4, 8, 10), ("relu", "gelu", "identity"), layer_kinds=("conv", "conv", "linear"),
            kernel_size=(3, 3), conv_padding=1), cnn_zoo_spec("relu").__class__(
            (3, 8, 10), ("tanh", "identity"), layer_kinds=("conv", "linear"), kernel_size=(5, 5), conv_padding=2))):
        wild_park.write_network(roots["wild_park"], random_network(spec), run=f"trial_{i}",
                                checkpoint="checkpoint_000001", score=0.2 + 0.1 * i, iteration=1)
    return roots


def test_detect_format_of_every_root(zoos, tmp_path):
    for name, root in zoos.items():
        assert detect_format(root) == name
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no known weight-zoo layout") as info:
        detect_format(empty)
    assert str(empty) in str(info.value)
    # The folder an archive was extracted into: point the user one level down.
    (tmp_path / "__MACOSX").mkdir()
    with pytest.raises(DataError, match="use that folder") as info:
        detect_format(tmp_path)
    assert str(zoos["cifar_inr"]) in str(info.value)


def test_detect_file_format(zoos):
    for name in ("mnist_inr", "fmnist_inr", "cifar_inr"):
        first = FORMATS[name].list_files(zoos[name])[0]
        assert detect_file_format(first) == name
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_file_format(zoos["mnist_inr"] / "statistics.pth")


def test_summaries_count_and_measure(zoos):
    mnist = summarize(zoos["mnist_inr"])
    assert mnist["n_networks"] == 4 and mnist["labels"] == {0: 2, 1: 2}
    assert mnist["layout"] == [2, 32, 32, 1] and len(mnist["layers"]) == 3
    fmnist = summarize(zoos["fmnist_inr"])
    assert fmnist["labels_in_sample"] == {3: 4}
    assert fmnist["splits_json"] == {"train": 2, "val": 1, "test": 0}
    cifar = summarize(zoos["cifar_inr"], sample=2)
    assert cifar["n_networks"] == 3 and cifar["aug_copies"] == {0: 3}
    assert cifar["statistics_over"] == 2
    zoo = summarize(zoos["cnn_zoo"])
    assert zoo["n_networks"] == 4 and zoo["n_final_checkpoints"] == 2
    assert zoo["target_test_accuracy_final"]["max"] == pytest.approx(0.7)
    assert zoo["activations_in_zoo"] == {"relu": 2, "tanh": 2}
    # The statistics are those of the weights actually stored.
    rows = cnn_zoo.open_weights(zoos["cnn_zoo"])
    dense_bias = rows[:, 4800:4810].astype(np.float64)
    assert zoo["layers"][3]["bias_mean"] == pytest.approx(dense_bias.mean())
    assert zoo["layers"][3]["bias_std"] == pytest.approx(dense_bias.std())
    park = summarize(zoos["wild_park"])
    assert park["n_networks"] == 2 and park["n_architectures"] == 2 and park["runs"] == 2
    assert park["target_test_accuracy"]["max"] == pytest.approx(0.3)


def test_read_command_json_and_text(zoos, capsys):
    assert main(["read", str(zoos["cifar_inr"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "cifar_inr" and info["layout"] == [2, 32, 32, 3]
    one = cifar_inr.list_files(zoos["cifar_inr"])[1]
    assert main(["read", str(one)]) == 0
    text = capsys.readouterr().out
    assert "format: cifar_inr" in text and "label: 1" in text and "32x2" in text


def test_read_command_reports_bad_file_in_one_line(zoos, capsys):
    bad = mnist_inr.list_files(zoos["mnist_inr"])[0]
    bad.write_text("<html>login</html>")
    assert main(["read", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(bad) in err and "HTML" in err
