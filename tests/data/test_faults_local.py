"""`source: local` faults in scalegmn.data.acquire / scalegmn.data.ingest (issue 11, items 1, 2 and 13)."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from scalegmn.data import acquire
from scalegmn.data.ingest import ingest_dataset
from scalegmn.errors import ConfigError, DataError


def local(path) -> dict:
    return {"name": "mnist_inr", "source": "local", "path": str(path)}


# --- item 1: the content of a local folder is recorded -------------------------------------------


def test_folder_listing_follows_names_sizes_and_times(mnist_root):
    first = acquire.folder_listing(mnist_root)
    assert first == acquire.folder_listing(mnist_root)  # stable
    assert first["files"] == len([p for p in mnist_root.rglob("*") if p.is_file()])
    (mnist_root / ".DS_Store").write_bytes(b"x")  # hidden files are not part of the dataset
    assert acquire.folder_listing(mnist_root) == first
    f = next(mnist_root.rglob("*.pth"))
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # rewritten, same size
    assert acquire.folder_listing(mnist_root)["sha256"] != first["sha256"]


# --- item 2: a moved folder is named by the user's path ------------------------------------------


def test_missing_local_path_names_the_key_and_the_path(tmp_path):
    gone = tmp_path / "nowhere" / "mnist-inrs"
    with pytest.raises(ConfigError) as err:
        acquire.local_root("mnist_inr", str(gone))
    msg = str(err.value)
    assert "datasets.mnist_inr.local.path" in msg and str(gone) in msg and "\n" not in msg
    assert "<name>" not in msg
    with pytest.raises(DataError) as err:  # the job says the same
        acquire.prepare_raw(local(gone), tmp_path / "raw")
    assert "datasets.mnist_inr.local.path" in str(err.value) and "<name>" not in str(err.value)


def test_dangling_local_link_names_the_users_folder(mnist_root, tmp_path):
    root = acquire.prepare_raw(local(mnist_root), tmp_path / "linked")
    moved = tmp_path / "moved"
    mnist_root.rename(moved)
    with pytest.raises(DataError) as err:
        ingest_dataset(root, tmp_path / "w.h5", tmp_path / "q.tsv", dataset="mnist_inr", fmt="mnist_inr")
    msg = str(err.value)
    assert msg.startswith(str(mnist_root)) and "datasets.mnist_inr.local.path" in msg and "\n" not in msg
    assert "rerun the acquire stage" not in msg


def test_local_link_keeps_the_users_path_unresolved(mnist_root, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(mnist_root.parent, target_is_directory=True)
    root = acquire.prepare_raw(local(alias / "mnist-inrs"), tmp_path / "linked")
    assert os.readlink(root) == str(alias / "mnist-inrs")


# --- item 13: local.path may name the folder holding the dataset root ----------------------------


def test_local_folder_holding_the_root_links_the_root(mnist_root, tmp_path):
    holder = mnist_root.parent  # .../raw, which holds mnist-inrs/
    (holder / "notes.txt").write_text("x")
    root = acquire.prepare_raw(local(holder), tmp_path / "linked")
    assert root == tmp_path / "linked" / "mnist-inrs" and root.resolve() == mnist_root.resolve()
    summary = ingest_dataset(root, tmp_path / "w.h5", tmp_path / "q.tsv", dataset="mnist_inr", fmt="mnist_inr")
    assert summary["n_networks"] == 18
    assert acquire.folder_listing(acquire.local_root("mnist_inr", str(holder))) == acquire.folder_listing(mnist_root)


def test_root_is_found_the_same_way_in_a_folder_and_in_an_archive(tmp_path):
    def layout(files):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name in files:
                z.writestr(name, b"x")
        return buf.getvalue()

    names = ["export/v2/mnist-inrs/mnist_png_testing_0_0/checkpoints/model_final.pth", "export/README.txt"]
    archive = tmp_path / "a.zip"
    archive.write_bytes(layout(names))
    from_archive = acquire.prepare_raw(local(archive), tmp_path / "raw_a")
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(archive).extractall(folder)
    from_folder = acquire.prepare_raw(local(folder), tmp_path / "raw_f")
    rel = sorted(str(p.relative_to(from_archive)) for p in from_archive.rglob("*") if p.is_file())
    assert rel == sorted(str(p.relative_to(from_folder)) for p in from_folder.rglob("*") if p.is_file())
    assert rel == ["mnist_png_testing_0_0/checkpoints/model_final.pth"]
