"""Your own zoo from an archive: the generic format (state dicts + manifest.csv) packed as a .zip
(the zoo in a top folder) and as a .tar.gz (manifest at the top), read with `source: local`, and
the .tar.gz fetched with `source: download` from a local HTTP server (127.0.0.1, no external host).
One Snakemake run builds the data stages of all three and of the same zoo as a plain folder: each
archive gives the folder's networks, splits and cached weights."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile

import pytest
import torch

from scalegmn.data import load_split, weights

from .faults_data_helpers import serve_folder
from .test_own_zoo import write_random_zoo
from .test_rerun import copy_workflow, snakemake

pytestmark = pytest.mark.slow  # one Snakemake run: 4 datasets x (ingest, splits, canonicalize, cache)

N = 40
SOURCES = ("zoo_dir", "zoo_zip", "zoo_tgz", "zoo_http")


def pack(zoo, tmp):
    """zoo.zip (the zoo under a top folder ``myzoo/``, plus __MACOSX junk) and zoo.tar.gz (the
    zoo's files at the top), both of every file of the folder."""
    files = sorted(p for p in zoo.rglob("*") if p.is_file())
    with zipfile.ZipFile(tmp / "zoo.zip", "w") as z:
        for p in files:
            z.write(p, f"myzoo/{p.relative_to(zoo)}")
        z.writestr("__MACOSX/myzoo/._manifest.csv", b"junk")
    with tarfile.open(tmp / "zoo.tar.gz", "w:gz") as t:
        for p in files:
            t.add(p, str(p.relative_to(zoo)))
    return tmp / "zoo.zip", tmp / "zoo.tar.gz"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    with serve_folder(site) as url:
        yield url, site


@pytest.fixture(scope="module")
def built(tmp_path_factory, server):
    url, site = server
    tmp = tmp_path_factory.mktemp("zoo")
    write_random_zoo(tmp / "zoo", n=N)
    zip_path, tgz_path = pack(tmp / "zoo", tmp)
    (site / "zoo.tar.gz").write_bytes(tgz_path.read_bytes())
    sha = hashlib.sha256(tgz_path.read_bytes()).hexdigest()
    local = {"format": "generic", "source": "local", "canonicalize": "none"}
    config = {
        "datasets": {
            "zoo_dir": {**local, "local": {"path": str(tmp / "zoo")}},
            "zoo_zip": {**local, "local": {"path": str(zip_path)}},
            "zoo_tgz": {**local, "local": {"path": str(tgz_path)}},
            "zoo_http": {"format": "generic", "source": "download", "canonicalize": "none",
                         "download": {"urls": [f"{url}/zoo.tar.gz"], "sha256": sha, "retries": 1}},
        },
        "views": {name: {"dataset": name} for name in SOURCES},
        "tables": {},
    }
    work = copy_workflow(tmp_path_factory.mktemp("wf"), config)
    res = snakemake(work, "data_all")
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return work


def _splits(work, name):
    return json.loads((work / "results" / "data" / name / "splits.json").read_text())


def _same_as_the_folder(work, name):
    """The dataset's splits and every cached network equal those of the zoo read as a folder."""
    assert all(_splits(work, name)[k] == _splits(work, "zoo_dir")[k] for k in ("train", "val", "test"))
    for split in ("train", "val", "test"):
        ours = load_split(work / "results" / "cache" / name / f"{split}.zarr")
        folder = load_split(work / "results" / "cache" / "zoo_dir" / f"{split}.zarr")
        assert ours.size == folder.size > 0
        assert torch.equal(ours.y, folder.y)
        for i in range(ours.size):
            (w, b), (fw, fb) = weights(ours, i), weights(folder, i)
            assert all(torch.equal(x, y) for x, y in zip(w + b, fw + fb, strict=True)), (name, split, i)


def test_the_folder_gives_every_network(built):
    counts = _splits(built, "zoo_dir")["counts"]
    assert counts["train"] + counts["val"] + counts["test"] == N
    assert (built / "results/data/zoo_dir/raw/zoo").is_symlink()  # a folder is linked, not copied


def test_a_local_zip_with_a_top_folder(built):
    raw = built / "results/data/zoo_zip/raw/zoo"
    assert (raw / "manifest.csv").is_file() and not raw.is_symlink() and not list(raw.rglob("__MACOSX"))
    _same_as_the_folder(built, "zoo_zip")


def test_a_local_tar_gz(built):
    assert (built / "results/data/zoo_tgz/raw/zoo/manifest.csv").is_file()
    _same_as_the_folder(built, "zoo_tgz")


def test_a_downloaded_tar_gz(built, server):
    url, _ = server
    manifest = json.loads((built / "results/data/zoo_http/download/manifest.json").read_text())
    assert [(m["url"], m["archive"], m["kind"]) for m in manifest] == [(f"{url}/zoo.tar.gz", True, "gzip")]
    assert (built / "results/data/zoo_http/raw/zoo/manifest.csv").is_file()
    _same_as_the_folder(built, "zoo_http")
