"""Download faults in scalegmn.data.acquire (issue 11, items 6, 7 and 9), against the local fault
server of tests/data/test_acquire.py."""

from __future__ import annotations

import hashlib
import json

import pytest

from scalegmn.data import acquire
from scalegmn.errors import DataError
from tests.data.test_acquire import Server, make_tar_xz, make_zip


@pytest.fixture
def server():
    body = bytearray(make_zip())
    body[200:260] = b"\x00" * 60
    with Server({"data.zip": make_zip(), "zoo.tar.xz": make_tar_xz(), "corrupt.zip": bytes(body)}) as s:
        yield s


def files_in(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- item 6: only transient failures are retried ------------------------------------------------


@pytest.mark.parametrize("path, sha, match", [
    ("/missing/data.zip", None, "HTTP 404"),
    ("/html/data.zip", None, "HTML page"),
    ("/ok/data.zip", "0" * 64, "sha256 mismatch"),
    ("/ok/corrupt.zip", None, "corrupt"),
])
def test_permanent_failure_is_fetched_once_and_is_not_transient(server, tmp_path, path, sha, match):
    with pytest.raises(DataError, match=match) as err:
        acquire.download(f"{server.url}{path}", tmp_path / "data.zip", sha256=sha, retries=4, backoff=0)
    assert not isinstance(err.value, acquire.TransientDownloadError)
    assert server.hits[path] == 1
    assert files_in(tmp_path) == []


def test_transient_failure_is_retried_and_says_so(server, tmp_path):
    with pytest.raises(acquire.TransientDownloadError, match="truncated body"):
        acquire.download(f"{server.url}/truncated/data.zip", tmp_path / "data.zip", retries=3, backoff=0)
    assert server.hits["/truncated/data.zip"] == 3


# --- item 7: a partial download survives its run and is resumed ----------------------------------


def test_partial_download_is_resumed_by_the_next_run(server, tmp_path):
    body = server.files["data.zip"]
    url = f"{server.url}/resume/data.zip"
    with pytest.raises(acquire.TransientDownloadError):  # the run ends with the body half there
        acquire.download(url, tmp_path / "data.zip", retries=1, backoff=0)
    assert (tmp_path / "data.zip.part").stat().st_size == len(body) // 2
    out = acquire.download(url, tmp_path / "data.zip", retries=1, backoff=0)  # the next run
    assert out.read_bytes() == body
    assert server.ranges == [f"bytes={len(body) // 2}-"]
    assert files_in(tmp_path) == ["data.zip"]


def test_partial_download_restarts_when_the_size_changed(server, tmp_path):
    url = f"{server.url}/resume/data.zip"
    with pytest.raises(acquire.TransientDownloadError):
        acquire.download(url, tmp_path / "data.zip", retries=1, backoff=0)
    server.files["data.zip"] = new = make_zip(nested=True)  # upstream replaced the file
    out = acquire.download(url, tmp_path / "data.zip", retries=1, backoff=0)
    assert out.read_bytes() == new


def test_partial_download_of_another_url_is_discarded(server, tmp_path):
    with pytest.raises(acquire.TransientDownloadError):
        acquire.download(f"{server.url}/resume/data.zip", tmp_path / "data.zip", retries=1, backoff=0)
    out = acquire.download(f"{server.url}/ok/data.zip", tmp_path / "data.zip", retries=1, backoff=0)
    assert out.read_bytes() == server.files["data.zip"]
    assert server.ranges == []


def test_download_all_keeps_parts_and_verified_files_between_runs(server, tmp_path):
    urls = [f"{server.url}/ok/zoo.tar.xz", f"{server.url}/resume/data.zip"]
    with pytest.raises(acquire.TransientDownloadError):
        acquire.download_all(urls, tmp_path / "download", retries=1, backoff=0)
    assert not (tmp_path / "download").exists()
    folder = acquire.download_all(urls, tmp_path / "download", retries=1, backoff=0)
    assert server.hits["/ok/zoo.tar.xz"] == 1  # verified in the first run, not fetched again
    assert server.ranges == [f"bytes={len(server.files['data.zip']) // 2}-"]
    assert files_in(folder) == ["data.zip", "manifest.json", "zoo.tar.xz"]
    assert not (tmp_path / "download.partial").exists()


# --- item 9: download.archive is honoured --------------------------------------------------------


def test_declared_archive_type_mismatch_is_one_line_naming_url_and_key(server, tmp_path):
    url = f"{server.url}/ok/data.zip"
    with pytest.raises(DataError) as err:
        acquire.download(url, tmp_path / "data.zip", archive_type="tar.xz", retries=3, backoff=0,
                         key="datasets.mnist_inr.download")
    msg = str(err.value)
    assert msg.startswith(url) and "\n" not in msg
    assert "datasets.mnist_inr.download.archive" in msg and "tar.xz" in msg and "zip" in msg
    assert server.hits["/ok/data.zip"] == 1 and files_in(tmp_path) == []


def test_declared_archive_type_is_used_to_unpack(server, tmp_path):
    url = f"{server.url}/ok/zoo.tar.xz"
    folder = acquire.download_all([url], tmp_path / "download", archive_type="tar.xz", backoff=0)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest[0]["kind"] == "xz"
    root = acquire.prepare_raw({"name": "cifar10_gs", "source": "download", "archive": "tar.xz"},
                               tmp_path / "raw", folder)
    assert sorted(p.name for p in root.iterdir()) == ["layout.csv", "weights.npy"]
    with pytest.raises(DataError, match="download.archive"):  # a folder downloaded as another type
        acquire.prepare_raw({"name": "cifar10_gs", "source": "download", "archive": "zip"},
                            tmp_path / "raw2", folder)


def test_declared_archive_type_accepts_a_url_without_extension(server, tmp_path):
    body = server.files["zoo.tar.xz"]
    server.files["download"] = body
    out = acquire.download(f"{server.url}/ok/download", tmp_path / "f", archive_type="tar.xz", backoff=0,
                           sha256=hashlib.sha256(body).hexdigest())
    assert out.read_bytes() == body
