"""Downloads against a local HTTP server with faults; extraction of real-format archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from scalegmn.data import acquire
from scalegmn.errors import DataError

HTML = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"


def make_zip(nested: bool = False) -> bytes:
    """A small MNIST-INR-like zip with __MACOSX junk (optionally a zip inside a zip)."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for i in range(3):
            z.writestr(f"mnist-inrs/mnist_png_testing_{i}_{i}/checkpoints/model_final.pth",
                       bytes(range(256)) * 40)
        z.writestr("__MACOSX/mnist-inrs/._junk", b"junk")
    if not nested:
        return inner.getvalue()
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("mnist-inrs.zip", inner.getvalue())
    return outer.getvalue()


def make_tar_xz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as t:
        for name, data in [("cifar10/weights.npy", b"\x93NUMPY" + b"0" * 300), ("cifar10/layout.csv", b"a,b\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """Serves ``files`` with faults chosen by path prefix; counts requests per path."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.hits: dict[str, int] = {}
        self.ranges: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802
                path = self.path.split("?")[0]
                outer.hits[path] = outer.hits.get(path, 0) + 1
                n = outer.hits[path]
                if path.startswith("/redirect/"):
                    self.send_response(302)
                    self.send_header("Location", path.replace("/redirect", "", 1))
                    self.end_headers()
                    return
                if path.startswith("/html/"):
                    return self._send(200, HTML)
                if path.startswith("/flaky/") and n == 1:
                    return self._send(500, b"oops")
                if path.startswith("/missing/"):
                    return self._send(404, b"no")
                key = path.split("/")[-1]
                body = outer.files[key]
                rng = self.headers.get("Range")
                if rng and path.startswith("/resume/"):
                    outer.ranges.append(rng)
                    start = int(rng.split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    self.send_header("Content-Length", str(len(body) - start))
                    self.end_headers()
                    self.wfile.write(body[start:])
                    return
                if path.startswith("/truncated/") or (path.startswith("/resume/") and n == 1):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(200, body)

            def _send(self, code, body):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    files = {"data.zip": make_zip(), "nested.zip": make_zip(nested=True),
             "zoo.tar.xz": make_tar_xz(), "split.csv": b"0\n2\n0\n1\n"}
    with Server(files) as s:
        yield s


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


def test_download_ok_and_checksum(server, tmp_path):
    body = server.files["data.zip"]
    sha = hashlib.sha256(body).hexdigest()
    out = acquire.download(f"{server.url}/ok/data.zip", tmp_path / "data.zip", sha256=sha, backoff=0)
    assert out.read_bytes() == body
    assert leftovers(tmp_path) == ["data.zip"]


def test_html_page_with_200_is_an_error_naming_the_url(server, tmp_path):
    url = f"{server.url}/html/data.zip"
    with pytest.raises(DataError, match="HTML page") as err:
        acquire.download(url, tmp_path / "data.zip", backoff=0)
    assert url in str(err.value) and "\n" not in str(err.value)
    assert leftovers(tmp_path) == []


def test_truncated_body_fails_after_retries_and_keeps_only_the_part(server, tmp_path):
    with pytest.raises(acquire.TransientDownloadError, match="truncated body"):
        acquire.download(f"{server.url}/truncated/data.zip", tmp_path / "data.zip", retries=3, backoff=0)
    assert server.hits["/truncated/data.zip"] == 3
    assert leftovers(tmp_path) == ["data.zip.part", "data.zip.part.json"]  # the next run resumes it


def test_server_error_then_success_retries(server, tmp_path):
    out = acquire.download(f"{server.url}/flaky/data.zip", tmp_path / "data.zip", backoff=0)
    assert out.read_bytes() == server.files["data.zip"]
    assert server.hits["/flaky/data.zip"] == 2


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    with pytest.raises(DataError, match="sha256 mismatch"):
        acquire.download(f"{server.url}/ok/data.zip", tmp_path / "data.zip", sha256="0" * 64, backoff=0)
    assert leftovers(tmp_path) == []


def test_redirect_is_followed(server, tmp_path):
    out = acquire.download(f"{server.url}/redirect/ok/zoo.tar.xz", tmp_path / "zoo.tar.xz", backoff=0)
    assert out.read_bytes() == server.files["zoo.tar.xz"]


def test_range_resume_after_a_broken_body(server, tmp_path):
    body = server.files["data.zip"]
    out = acquire.download(f"{server.url}/resume/data.zip", tmp_path / "data.zip", backoff=0)
    assert out.read_bytes() == body
    assert server.ranges == [f"bytes={len(body) // 2}-"]


def test_http_404_fails_at_once(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        acquire.download(f"{server.url}/missing/data.zip", tmp_path / "data.zip", backoff=0)
    assert server.hits["/missing/data.zip"] == 1
    assert leftovers(tmp_path) == []


def test_corrupt_archive_is_rejected(tmp_path):
    body = bytearray(make_zip())
    body[200:260] = b"\x00" * 60  # damage a member's data: CRC fails
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(body))
    with pytest.raises(DataError, match="corrupt"):
        acquire.check_archive(bad)


def test_download_all_and_extract_with_plain_file(server, tmp_path):
    urls = [f"{server.url}/ok/zoo.tar.xz", f"{server.url}/ok/split.csv"]
    folder = acquire.download_all(urls, tmp_path / "download", backoff=0)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "split.csv", "zoo.tar.xz"]
    root = acquire.prepare_raw({"name": "cifar10_gs", "source": "download"}, tmp_path / "raw", folder)
    assert root == tmp_path / "raw" / "cifar10"
    assert sorted(p.name for p in root.iterdir()) == ["layout.csv", "split.csv", "weights.npy"]
    assert not (tmp_path / "raw.tmp").exists()


def test_download_all_failure_leaves_no_folder(server, tmp_path):
    urls = [f"{server.url}/ok/zoo.tar.xz", f"{server.url}/html/split.zip"]
    with pytest.raises(DataError):
        acquire.download_all(urls, tmp_path / "download", backoff=0)
    assert not (tmp_path / "download").exists()
    # only the verified first file is kept for the next run; nothing of the HTML page
    assert leftovers(tmp_path / "download.partial") == [".verified", "zoo.tar.xz", "zoo.tar.xz.json"]


def test_extract_nested_zip_strips_macosx(tmp_path):
    archive = tmp_path / "whole.zip"
    archive.write_bytes(make_zip(nested=True))
    root = acquire.extract([archive], [], tmp_path / "raw", "mnist-inrs")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.pth"))
    assert len(files) == 3 and all(f.startswith("mnist_png_testing_") for f in files)
    assert not list((tmp_path / "raw").rglob("__MACOSX"))


def test_local_html_named_zip_is_a_one_line_error(tmp_path):
    fake = tmp_path / "mnist-inrs.zip"
    fake.write_bytes(HTML)
    with pytest.raises(DataError) as err:
        acquire.prepare_raw({"name": "mnist_inr", "source": "local", "path": str(fake)}, tmp_path / "raw")
    assert str(fake) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_local_folder_is_linked(tmp_path):
    src = tmp_path / "somewhere" / "mnist-inrs"
    src.mkdir(parents=True)
    root = acquire.prepare_raw({"name": "mnist_inr", "source": "local", "path": str(src)}, tmp_path / "raw")
    assert root.resolve() == src.resolve()


def test_download_summary_sums_retries_and_resumes_in_one_line():
    assert acquire.download_summary("mnist_inr", [], "job.log") is None
    events = [{"event": "retry", "wait": 2.0, "reason": "HTTP 503"},
              {"event": "retry", "wait": 4.0, "reason": "HTTP 500"},
              {"event": "resume", "offset": 2_500_000}]
    assert acquire.download_summary("mnist_inr", events, "job.log") == (
        "mnist_inr: download 2 retries (6 s of backoff; last: HTTP 500), "
        "resumed 1 time(s), 2.5 MB not fetched again; details in job.log")
