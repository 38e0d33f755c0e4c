"""Bad input gets one clear line naming the file and what is wrong, never a deep traceback."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import torch

from scalegmn.data.formats import cifar_inr, cnn_zoo, fmnist_inr, mnist_images, mnist_inr
from scalegmn.data.formats.torchfile import load_state_dict, save_state_dict
from scalegmn.errors import DataError
from scalegmn.weightspace.network import cnn_zoo_spec, dws_siren_spec, nfn_siren_spec


def raises_data_error(func, *args, match: tuple[str, ...]) -> DataError:
    """Call ``func``; it must raise a one-line DataError containing every string in ``match``."""
    with pytest.raises(DataError) as info:
        func(*args)
    message = str(info.value)
    assert "\n" not in message, message
    for text in match:
        assert text in message, f"{text!r} not in {message!r}"
    return info.value


@pytest.fixture
def mnist_file(tmp_path, random_network):
    return mnist_inr.write_network(
        tmp_path, random_network(dws_siren_spec()), split="training", label=2, image_id=9
    )


def test_truncated_pth(mnist_file):
    data = mnist_file.read_bytes()
    mnist_file.write_bytes(data[: len(data) // 2])
    raises_data_error(
        mnist_inr.read_network,
        mnist_file,
        match=(str(mnist_file), "not a readable torch file", "damaged zip archive"),
    )


def test_random_bytes_pth(mnist_file):
    mnist_file.write_bytes(b"\x07" + np.random.default_rng(0).bytes(3000))
    raises_data_error(
        mnist_inr.read_network,
        mnist_file,
        match=(
            str(mnist_file),
            "truncated or corrupt?",
            "neither a torch zip archive nor a pickle",
        ),
    )


def test_html_page_saved_as_pth(mnist_file):
    """What a failed Dropbox / Google Drive download leaves behind."""
    mnist_file.write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n")
    err = raises_data_error(
        mnist_inr.read_network, mnist_file, match=(str(mnist_file), "HTML", "failed")
    )
    assert len(str(err)) < 400


def test_empty_and_missing_pth(tmp_path, mnist_file):
    mnist_file.write_bytes(b"")
    raises_data_error(load_state_dict, mnist_file, match=(str(mnist_file), "empty"))
    gone = tmp_path / "nope.pth"
    raises_data_error(load_state_dict, gone, match=(str(gone), "file not found"))


def test_pickled_object_is_refused(tmp_path):
    """weights_only loading: a pickle of an arbitrary class is an unreadable file, not code."""
    path = tmp_path / "evil.pth"
    torch.save({"x": np.dtype("float32"), "f": pd.Timestamp(0)}, path)
    raises_data_error(
        load_state_dict, path, match=(str(path), "refused by the safe loader", "numpy.dtype")
    )


def test_tensor_instead_of_state_dict(tmp_path):
    path = tmp_path / "t.pth"
    torch.save(torch.zeros(3), path)
    raises_data_error(load_state_dict, path, match=(str(path), "expected a state dict"))


def _rewrite(path, change):
    sd = load_state_dict(path)
    change(sd)
    save_state_dict(path, sd)


def test_missing_key(mnist_file):
    _rewrite(mnist_file, lambda sd: sd.pop("seq.1.bias"))
    raises_data_error(
        mnist_inr.read_network, mnist_file, match=(str(mnist_file), "missing key 'seq.1.bias'")
    )


def test_extra_key(mnist_file):
    _rewrite(mnist_file, lambda sd: sd.update({"seq.3.weight": torch.zeros(1, 1)}))
    raises_data_error(
        mnist_inr.read_network, mnist_file, match=(str(mnist_file), "unexpected key 'seq.3.weight'")
    )


def test_wrong_shape(mnist_file):
    _rewrite(mnist_file, lambda sd: sd.update({"seq.0.weight": torch.zeros(2, 32)}))
    raises_data_error(
        mnist_inr.read_network,
        mnist_file,
        match=(str(mnist_file), "key 'seq.0.weight' has shape [2, 32], expected [32, 2]"),
    )


@pytest.mark.parametrize("bad, word", [(float("nan"), "NaN"), (float("inf"), "Inf")])
def test_non_finite_values(mnist_file, bad, word):
    def poison(sd):
        sd["seq.2.weight"][0, 5] = bad

    _rewrite(mnist_file, poison)
    raises_data_error(
        mnist_inr.read_network, mnist_file, match=(str(mnist_file), f"'seq.2.weight' holds {word}")
    )


def test_malformed_mnist_folder(tmp_path, mnist_file):
    bad = tmp_path / "mnist_png_training_x_9" / "checkpoints" / "model_final.pth"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(mnist_file.read_bytes())
    raises_data_error(mnist_inr.read_network, bad, match=(str(bad), "mnist_png_training_x_9"))


def test_cifar_file_is_not_an_mnist_inr(tmp_path, random_network):
    """A CIFAR INR copied into the MNIST tree: the keys say which dataset it came from."""
    src = cifar_inr.write_network(tmp_path / "c", random_network(nfn_siren_spec()), label=1, idx=0)
    dst = tmp_path / "m" / "mnist_png_training_1_0" / "checkpoints" / "model_final.pth"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(src.read_bytes())
    raises_data_error(mnist_inr.read_network, dst, match=(str(dst), "missing key 'seq.0.weight'"))


def test_fmnist_label_problems(tmp_path, random_network):
    path = fmnist_inr.write_network(
        tmp_path, random_network(dws_siren_spec()), split="train", index=3, label=1
    )
    _rewrite(path, lambda sd: sd.update({"label": 1.5}))
    raises_data_error(fmnist_inr.read_network, path, match=(str(path), "key 'label'"))
    _rewrite(path, lambda sd: sd.pop("label"))
    raises_data_error(fmnist_inr.read_network, path, match=(str(path), "missing key 'label'"))


def test_fmnist_splits_json_problems(tmp_path):
    path = tmp_path / "splits.json"
    raises_data_error(fmnist_inr.read_splits, tmp_path, match=(str(path), "file not found"))
    path.write_text('{"train": [')
    raises_data_error(fmnist_inr.read_splits, tmp_path, match=(str(path), "not valid JSON"))
    path.write_text('{"train": [], "val": []}')
    raises_data_error(fmnist_inr.read_splits, tmp_path, match=(str(path), "key 'test'"))
    path.write_text('{"train": ["a/b/c.png"], "val": [], "test": []}')
    raises_data_error(fmnist_inr.read_splits, tmp_path, match=(str(path), "'b/c.png'"))


def _zoo(root, random_network, n=3):
    rows = cnn_zoo.network_to_rows(random_network(cnn_zoo_spec("relu"), n))
    metrics = pd.DataFrame(
        {"step": [86] * n, "test_accuracy": [0.5] * n, "config.activation": ["relu"] * n}
    )
    cnn_zoo.write_zoo(root, rows, metrics)
    return rows


def test_weights_width_disagrees_with_layout(tmp_path, random_network):
    rows = _zoo(tmp_path, random_network)
    np.save(tmp_path / "weights.npy", rows[:, :4000])
    path = tmp_path / "weights.npy"
    raises_data_error(
        cnn_zoo.open_weights,
        tmp_path,
        match=(str(path), "4000 values", "layout.csv describes 4970"),
    )


def test_weights_rows_disagree_with_metrics(tmp_path, random_network):
    rows = _zoo(tmp_path, random_network)
    np.save(tmp_path / "weights.npy", rows[:2])
    raises_data_error(
        cnn_zoo.open_weights, tmp_path, match=(str(tmp_path / "weights.npy"), "2 rows", "has 3")
    )


def test_weights_wrong_dtype_and_corrupt(tmp_path, random_network):
    rows = _zoo(tmp_path, random_network)
    path = tmp_path / "weights.npy"
    np.save(path, rows.astype(np.float64))
    raises_data_error(cnn_zoo.open_weights, tmp_path, match=(str(path), "float64", "float32"))
    path.write_bytes(b"<html>not found</html>")
    raises_data_error(cnn_zoo.open_weights, tmp_path, match=(str(path), "not a readable .npy"))
    np.save(path, rows)
    path.write_bytes(path.read_bytes()[:5000])
    raises_data_error(cnn_zoo.open_weights, tmp_path, match=(str(path), "truncated or corrupt"))


def test_layout_and_metrics_problems(tmp_path, random_network):
    _zoo(tmp_path, random_network)
    layout = tmp_path / "layout.csv"
    text = layout.read_text()
    layout.write_text(text.replace('4810,4970,"(16, 10)"', '4810,4970,"(16, 11)"'))
    raises_data_error(cnn_zoo.read_layout, tmp_path, match=(str(layout), "dense/kernel:0", "176"))
    layout.write_text(text.replace("varname,", "name,"))
    raises_data_error(
        cnn_zoo.read_layout, tmp_path, match=(str(layout), "missing column 'varname'")
    )
    layout.write_text(text.replace('"(3, 3, 1, 16)"', "\"__import__('os')\""))
    raises_data_error(cnn_zoo.read_layout, tmp_path, match=(str(layout), "unreadable"))
    metrics = tmp_path / "metrics.csv.gz"
    metrics.write_bytes(gzip.compress(b"step,test_accuracy\n86,0.5\n"))
    raises_data_error(
        cnn_zoo.read_metrics, tmp_path, match=(str(metrics), "missing column 'config.activation'")
    )
    metrics.write_bytes(b"\x1f\x8b\x08\x00garbage")
    raises_data_error(
        cnn_zoo.read_metrics, tmp_path, match=(str(metrics), "not a readable gzip CSV")
    )


def test_split_csv_problems(tmp_path):
    path = tmp_path / "split.csv"
    path.write_text("0\n1\nabc\n")
    raises_data_error(cnn_zoo.read_split_csv, path, match=(str(path), "integer"))
    raises_data_error(cnn_zoo.read_split_csv, tmp_path / "x.csv", match=("x.csv", "file not found"))


def test_idx_bad_magic_and_truncated(tmp_path):
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    mnist_images.write_idx_images(path, images)
    raises_data_error(
        mnist_images.read_idx_labels, path, match=(str(path), "magic number 2051", "2049")
    )
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    raises_data_error(mnist_images.read_idx_images, path, match=(str(path), "truncated or corrupt"))
    path.write_bytes(path.read_bytes()[:30])
    raises_data_error(mnist_images.read_idx_images, path, match=(str(path), "corrupt gzip"))


def test_list_files_on_a_missing_root(tmp_path):
    root = tmp_path / "missing"
    for module in (mnist_inr, fmnist_inr, cifar_inr):
        raises_data_error(module.list_files, root, match=(str(root), "not a directory"))


def test_cifar_duplicate_index(tmp_path, random_network):
    net = random_network(nfn_siren_spec())
    cifar_inr.write_network(tmp_path, net, label=1, idx=4)
    cifar_inr.write_network(tmp_path, net, label=2, idx=4)
    raises_data_error(cifar_inr.list_files, tmp_path, match=("net4.pth", "index 4 also exists"))
