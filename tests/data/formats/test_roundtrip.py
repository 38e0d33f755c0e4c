"""Every writer -> reader round trip returns identical tensors, labels and metadata."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from scalegmn.atomic import atomic_write
from scalegmn.data.formats import cifar_inr, cnn_zoo, fmnist_inr, mnist_images, mnist_inr
from scalegmn.data.formats.torchfile import load_state_dict
from scalegmn.weightspace.network import cnn_zoo_spec, dws_siren_spec, nfn_siren_spec, unstack


def assert_same_tensors(a, b):
    assert a.spec == b.spec
    for x, y in zip((*a.weights, *a.biases), (*b.weights, *b.biases), strict=True):
        assert x.dtype == y.dtype == torch.float32
        assert torch.equal(x, y)


def test_mnist_inr_roundtrip(tmp_path, random_network):
    net = random_network(dws_siren_spec())
    path = mnist_inr.write_network(tmp_path, net, split="testing", label=7, image_id=1234)
    assert path == tmp_path / "mnist_png_testing_7_1234" / "checkpoints" / "model_final.pth"
    back = mnist_inr.read_network(path)
    assert_same_tensors(net, back)
    assert back.label == 7
    assert back.meta == {"split": "testing", "image_id": 1234}
    assert back.source == str(path)
    # The real key names, in the real order, float32.
    assert list(load_state_dict(path)) == [
        "seq.0.weight", "seq.0.bias", "seq.1.weight", "seq.1.bias", "seq.2.weight", "seq.2.bias"
    ]  # fmt: skip


def test_mnist_list_files_sorted_and_decoys_ignored(tmp_path, random_network):
    net = random_network(dws_siren_spec())
    written = [
        mnist_inr.write_network(tmp_path, net, split=s, label=lab, image_id=i)
        for s, lab, i in [("training", 3, 5), ("testing", 0, 2), ("training", 1, 10)]
    ]
    # Decoys found in the real archive, and the leftover of an interrupted atomic write.
    (tmp_path / "__MACOSX" / "mnist_png_training_1_1" / "checkpoints").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "mnist_png_training_1_1" / "checkpoints" / "._model_final.pth").write_bytes(b"\0\5\26\7")  # fmt: skip
    (tmp_path / "statistics.pth").write_bytes(b"junk")
    cifar = tmp_path / "cifar10_png_train_3_0" / "checkpoints"
    cifar.mkdir(parents=True)
    (cifar / "model_final.pth").write_bytes(b"junk")
    leftover = written[0].parent / ".model_final.pth.abc.tmp"
    leftover.mkdir()
    (leftover / "model_final.pth").write_bytes(b"half")
    files = mnist_inr.list_files(tmp_path)
    assert files == sorted(written)
    assert [mnist_inr.parse_path(p) for p in files] == [
        ("testing", 0, 2), ("training", 1, 10), ("training", 3, 5)
    ]  # fmt: skip


def test_fmnist_inr_roundtrip_and_splits(tmp_path, random_network):
    nets = unstack(random_network(dws_siren_spec(), 3))
    paths = [
        fmnist_inr.write_network(tmp_path, n, split=s, index=i, label=lab)
        for n, (s, i, lab) in zip(
            nets, [("train", 10, 4), ("train", 2, 9), ("test", 0, 1)], strict=True
        )
    ]
    assert paths[0] == tmp_path / "train" / "model_10.pth"
    sd = load_state_dict(paths[0])
    assert type(sd["label"]) is int and sd["label"] == 4
    # Sorted by index within train, then test.
    assert fmnist_inr.list_files(tmp_path) == [paths[1], paths[0], paths[2]]
    for n, p, (split, index, label) in zip(
        nets, paths, [("train", 10, 4), ("train", 2, 9), ("test", 0, 1)], strict=True
    ):
        back = fmnist_inr.read_network(p)
        assert_same_tensors(n, back)
        assert back.label == label and back.meta == {"split": split, "index": index}

    splits = {
        "train": ["train/model_10.pth"],
        "val": ["train/model_2.pth"],
        "test": ["test/model_0.pth"],
    }
    fmnist_inr.write_splits(tmp_path, splits, prefix="/home/someone/data/fmnist_inrs")
    text = (tmp_path / "splits.json").read_text()
    assert "/home/someone/data/fmnist_inrs/train/model_10.pth" in text
    assert fmnist_inr.read_splits(tmp_path) == splits


def test_cifar_inr_roundtrip_and_aug_folders(tmp_path, random_network):
    nets = unstack(random_network(nfn_siren_spec(), 4))
    base = [
        cifar_inr.write_network(tmp_path, nets[0], label=3, idx=10),
        cifar_inr.write_network(tmp_path, nets[1], label=0, idx=2),
    ]
    aug = [
        cifar_inr.write_network(tmp_path, nets[2], label=3, idx=10, aug=1),
        cifar_inr.write_network(tmp_path, nets[3], label=0, idx=2, aug=12),
    ]
    assert base[0] == tmp_path / "randinit_smaller_3s" / "net10.pth"
    assert aug[1] == tmp_path / "randinit_smaller_aug12_0s" / "net2.pth"
    # The base glob must not swallow aug folders (NFN's randinit_smaller_* bug).
    assert cifar_inr.list_files(tmp_path) == [base[1], base[0]]
    assert cifar_inr.list_files(tmp_path, aug=1) == [aug[0]]
    assert cifar_inr.list_files(tmp_path, aug=12) == [aug[1]]
    assert cifar_inr.list_aug_copies(tmp_path) == [1, 12]
    assert list(load_state_dict(base[0])) == [
        "net.0.linear.weight", "net.0.linear.bias", "net.1.linear.weight",
        "net.1.linear.bias", "net.2.weight", "net.2.bias",
    ]  # fmt: skip
    for n, p, label, idx, k in [
        (nets[0], base[0], 3, 10, None),
        (nets[3], aug[1], 0, 2, 12),
    ]:
        back = cifar_inr.read_network(p)
        assert_same_tensors(n, back)
        assert back.label == label and back.meta == {"idx": idx, "aug": k}


def test_writers_are_deterministic_and_leave_no_temp_files(tmp_path, random_network):
    net = random_network(nfn_siren_spec())
    a = cifar_inr.write_network(tmp_path / "a", net, label=1, idx=0)
    b = cifar_inr.write_network(tmp_path / "b", net, label=1, idx=0)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    # A slice of a batch must not drag the whole batch's storage into the file.
    batch = random_network(nfn_siren_spec(), 50)
    c = cifar_inr.write_network(tmp_path / "c", unstack(batch)[0], label=1, idx=0)
    assert c.stat().st_size < 2 * a.stat().st_size
    assert sorted(p.name for p in (tmp_path / "a").rglob("*")) == [
        "net0.pth",
        "randinit_smaller_1s",
    ]


def test_cnn_zoo_roundtrip(tmp_path, random_network):
    net = random_network(cnn_zoo_spec("tanh"), 6)
    rows = cnn_zoo.network_to_rows(net)
    assert rows.shape == (6, 4970) and rows.dtype == np.float32
    metrics = pd.DataFrame(
        {
            "config.activation": ["tanh"] * 6,
            "step": [0, 1, 2, 86, 0, 86],
            "test_accuracy": np.linspace(0.1, 0.6, 6),
            "modeldir": [f"run{i // 3}" for i in range(6)],
        }
    )
    cnn_zoo.write_zoo(tmp_path, rows, metrics)
    assert (tmp_path / "layout.csv").read_text().splitlines()[:3] == [
        "varname,start_idx,end_idx,shape",
        'sequential/conv2d/bias:0,0,16,"(16,)"',
        'sequential/conv2d/kernel:0,16,160,"(3, 3, 1, 16)"',
    ]
    weights = cnn_zoo.open_weights(tmp_path)
    assert weights.shape == (6, 4970) and isinstance(weights, np.memmap)
    back = cnn_zoo.rows_to_network(weights, cnn_zoo.read_layout(tmp_path), "tanh")
    assert_same_tensors(net, back)
    pd.testing.assert_frame_equal(cnn_zoo.read_metrics(tmp_path), metrics)
    # One row reads as one unbatched network.
    single = cnn_zoo.rows_to_network(weights[4], cnn_zoo.read_layout(tmp_path), "tanh")
    assert_same_tensors(unstack(net)[4], single)
    np.testing.assert_array_equal(cnn_zoo.network_to_rows(single), rows[4])


def test_split_csv_keeps_the_header_quirk(tmp_path):
    perm = np.random.default_rng(0).permutation(7)
    path = tmp_path / "cifar10_split.csv"
    cnn_zoo.write_split_csv(path, perm)
    assert path.read_text().splitlines() == ["0", *[str(i) for i in perm]]
    got = cnn_zoo.read_split_csv(path)
    assert got.dtype == np.int64 and len(got) == 8  # N + 1, as in the published numbers
    np.testing.assert_array_equal(got, np.concatenate([[0], perm]))


def test_idx_files_roundtrip_plain_and_gzip(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5])
    raw = tmp_path / "MNIST" / "raw"
    mnist_images.write_idx_images(raw / "train-images-idx3-ubyte.gz", images)
    mnist_images.write_idx_labels(raw / "train-labels-idx1-ubyte.gz", labels)
    mnist_images.write_idx_images(raw / "t10k-images-idx3-ubyte", images[:2])
    assert (raw / "train-images-idx3-ubyte.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (raw / "t10k-images-idx3-ubyte").read_bytes()[:8] == bytes([0, 0, 8, 3, 0, 0, 0, 2])
    np.testing.assert_array_equal(mnist_images.read_mnist_images(tmp_path, "training"), images)
    np.testing.assert_array_equal(mnist_images.read_mnist_labels(tmp_path, "training"), labels)
    np.testing.assert_array_equal(mnist_images.read_mnist_images(tmp_path, "testing"), images[:2])


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "weights.npy"
    target.write_bytes(b"old")

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted), atomic_write(target) as tmp:
        tmp.write_bytes(b"half-writ")
        raise Interrupted
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.npy"]


def test_writers_refuse_what_readers_would_reject(tmp_path, random_network):
    batch = random_network(dws_siren_spec(), 2)
    with pytest.raises(ValueError, match="unstack"):
        mnist_inr.write_network(tmp_path, batch, split="training", label=1, image_id=0)
    with pytest.raises(ValueError, match="spec"):
        mnist_inr.write_network(
            tmp_path, random_network(nfn_siren_spec()), split="training", label=1, image_id=0
        )
    with pytest.raises(ValueError, match="split"):
        fmnist_inr.write_network(tmp_path, unstack(batch)[0], split="val", index=0, label=1)
    bad = random_network(nfn_siren_spec())
    bad.weights[1][0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cifar_inr.write_network(tmp_path, bad, label=1, idx=0)
    assert not any(tmp_path.rglob("*.pth"))
