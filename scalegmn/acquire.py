"""Get a dataset onto disk: download (verified), extract, or build the offline stand-in.

Downloads stream to ``<name>.part`` with progress in the log, retry with exponential backoff,
resume with an HTTP ``Range`` request where the server answers 206, follow redirects, and are
verified BEFORE they are renamed to their final name: magic bytes (an HTML page served with
status 200 is an error naming the URL), archive integrity (every zip member CRC-checked, every
tar member read) and the sha256 when one is configured. A download that finally fails leaves
no file behind.

Extraction unpacks into a temporary folder, unpacks nested zips (the DWS whole-folder zip),
drops ``__MACOSX`` junk, finds the dataset root folder and renames the result into place.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from scalegmn.errors import DataError
from scalegmn.formats.atomic import atomic_directory

logger = logging.getLogger(__name__)

ARCHIVE_KINDS = ("zip", "tar", "tar.gz", "tar.xz")
_PLAIN_SUFFIXES = (".csv", ".json", ".txt")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


class _Retryable(Exception):
    """A transient failure: try again (resuming where possible)."""


def sniff(path: str | Path) -> str:
    """Kind of a file from its first bytes: zip, gzip, xz, tar, html, text or unknown."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    low = head.lstrip().lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or b"<html" in low[:200]:
        return "html"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown"


def expects_archive(url: str) -> bool:
    """True unless the URL names a plain file (``.csv``, ``.json``, ``.txt``)."""
    return not urllib.parse.urlparse(url).path.lower().endswith(_PLAIN_SUFFIXES)


def file_name_for(url: str, index: int) -> str:
    """Local file name for a URL: its last path component, or ``download<i>`` when it has none."""
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name or name == "download" or "." not in name:
        return f"download{index}"
    return name


def sha256_of(path: str | Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def verify_download(path: str | Path, url: str, *, archive: bool, sha256: str | None) -> str:
    """Check a downloaded file before accepting it; return its kind. Raises DataError(url, ...)."""
    kind = sniff(path)
    if kind == "html":
        raise DataError(url, "the server sent an HTML page instead of the file (a login, viewer "
                             "or quota page?); check the URL gives the file itself")
    if archive:
        if kind not in ("zip", "gzip", "xz", "tar"):
            raise DataError(url, f"expected an archive (zip/tar/tar.gz/tar.xz), got {kind} content")
        check_archive(path, url)
    if sha256 is not None:
        got = sha256_of(path)
        if got != sha256.lower():
            raise DataError(url, f"sha256 mismatch: expected {sha256.lower()}, got {got}; "
                                 "the file changed upstream or the download is corrupt")
    return kind


def check_archive(path: str | Path, name: str | None = None) -> None:
    """Read every member of a zip (CRC check) or tar (full read); DataError if it is damaged."""
    where = name or str(path)
    kind = sniff(path)
    if kind == "html":
        raise DataError(where, "is an HTML page, not an archive (a login or viewer page saved "
                               "under an archive name?); download the file itself")
    if kind not in ("zip", "gzip", "xz", "tar"):
        raise DataError(where, f"is not a zip/tar archive (content looks like {kind})")
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                raise DataError(where, f"archive member {bad!r} is corrupt (CRC mismatch)")
        else:
            with tarfile.open(path, "r:*") as t:
                for member in t:
                    if member.isfile():
                        f = t.extractfile(member)
                        while f is not None and f.read(1 << 20):
                            pass
    except DataError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise DataError(where, f"archive is truncated or corrupt: {_one_line(err)}") from None


def _open(url: str, offset: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "scalegmn-pipeline"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # follows redirects
    except urllib.error.HTTPError as err:
        if err.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {err.code}") from None
        if err.code == 416 and offset:
            raise _Retryable("HTTP 416 on resume") from None
        raise DataError(url, f"HTTP {err.code} {err.reason}; check the URL") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Retryable(str(getattr(err, "reason", err))) from None


def _fetch_once(url: str, part: Path, timeout: float, block: int) -> None:
    """One attempt: append to ``part`` (resuming if the server allows) until the body ends."""
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(url, offset, timeout)
    with resp:
        status = getattr(resp, "status", 200)
        if offset and status == 206:
            logger.info("resuming %s at byte %d", url, offset)
            mode = "ab"
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length else None
        else:
            if offset:
                logger.info("server ignored the Range request; restarting %s", url)
            offset, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length else None
        done, last_log = offset, time.monotonic()
        with open(part, mode) as out:
            try:
                while chunk := resp.read(block):
                    out.write(chunk)
                    done += len(chunk)
                    if time.monotonic() - last_log > 5:
                        last_log = time.monotonic()
                        pct = f" ({100 * done / total:.1f}%)" if total else ""
                        logger.info("downloaded %.1f MB%s of %s", done / 1e6, pct, url)
            except (OSError, http.client.HTTPException) as err:  # broken connection, IncompleteRead
                raise _Retryable(f"connection broken after {done} bytes: {err}") from None
    if total is not None and done < total:
        raise _Retryable(f"truncated body: got {done} of {total} bytes")


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    archive: bool | None = None,
    retries: int = 4,
    backoff: float = 2.0,
    timeout: float = 60.0,
    block: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest``, verified; nothing is left at ``dest`` or ``dest.part`` on failure.

    Args:
        sha256: expected checksum, or None to skip that check.
        archive: the file must be an intact archive (default: unless the URL ends .csv/.json/.txt).
        retries: attempts for transient failures (HTTP 5xx/429, broken or truncated bodies);
            each retry resumes with ``Range`` and waits ``backoff * 2**attempt`` seconds.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    archive = expects_archive(url) if archive is None else archive
    part.unlink(missing_ok=True)
    try:
        for attempt in range(retries):
            try:
                _fetch_once(url, part, timeout, block)
                break
            except _Retryable as err:
                if attempt + 1 == retries:
                    raise DataError(url, f"download failed after {retries} attempts: {err}") from None
                wait = backoff * 2**attempt
                logger.warning("attempt %d/%d for %s failed (%s); retrying in %.1f s",
                               attempt + 1, retries, url, err, wait)
                time.sleep(wait)
        kind = verify_download(part, url, archive=archive, sha256=sha256)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    logger.info("downloaded %s -> %s (%s, %d bytes)", url, dest, kind, dest.stat().st_size)
    return dest


def download_all(
    urls: list[str] | tuple[str, ...],
    out_dir: str | Path,
    *,
    sha256: list[str | None] | tuple[str | None, ...] | None = None,
    retries: int = 4,
    backoff: float = 2.0,
) -> Path:
    """Download every URL into ``out_dir`` (built as ``out_dir.tmp`` then renamed).

    Writes ``manifest.json`` (url, file, bytes, sha256 per entry) into the folder.
    """
    out_dir = Path(out_dir)
    sha256 = list(sha256) if sha256 else [None] * len(urls)
    manifest = []
    with atomic_directory(out_dir) as tmp:
        for i, (url, sha) in enumerate(zip(urls, sha256, strict=True)):
            path = download(url, tmp / file_name_for(url, i), sha256=sha, retries=retries,
                            backoff=backoff)
            manifest.append({"url": url, "file": path.name, "bytes": path.stat().st_size,
                             "sha256": sha256_of(path), "archive": expects_archive(url)})
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out_dir


# ---------------------------------------------------------------------------------------------
# extraction


def _safe_member(name: str, archive: Path) -> None:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise DataError(archive, f"archive member {name!r} would escape the target folder")


def _unpack(archive: Path, into: Path) -> None:
    kind = sniff(archive)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    _safe_member(name, archive)
                z.extractall(into)
        elif kind in ("tar", "gzip", "xz"):
            with tarfile.open(archive, "r:*") as t:
                for m in t.getmembers():
                    _safe_member(m.name, archive)
                t.extractall(into, filter="data")
        else:
            raise DataError(archive, f"not an archive (content looks like {kind})")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DataError(archive, f"archive is truncated or corrupt: {_one_line(err)}") from None


def _strip_junk(folder: Path) -> None:
    for junk in list(folder.rglob("__MACOSX")):
        shutil.rmtree(junk, ignore_errors=True)
    for ds in folder.rglob(".DS_Store"):
        ds.unlink(missing_ok=True)


def _unpack_nested(folder: Path, depth: int = 2) -> None:
    """Unpack zips found inside an extracted folder (zip-of-zips), then delete them."""
    for _ in range(depth):
        inner = [p for p in folder.rglob("*.zip") if p.is_file() and sniff(p) == "zip"]
        if not inner:
            return
        for z in inner:
            logger.info("unpacking nested archive %s", z.name)
            _unpack(z, z.parent)
            z.unlink()
        _strip_junk(folder)


def find_root(folder: Path, root_name: str) -> Path:
    """The dataset root inside an extracted folder: a directory named ``root_name``, else the
    single top-level directory, else the folder itself."""
    if folder.name == root_name:
        return folder
    named = sorted((p for p in folder.rglob(root_name) if p.is_dir()), key=lambda p: len(p.parts))
    if named:
        return named[0]
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def extract(archives: list[Path], plain_files: list[Path], raw_dir: str | Path, root_name: str) -> Path:
    """Build ``raw_dir/root_name`` from archives (+ plain files copied into the root).

    Built in ``raw_dir.tmp`` and renamed, so a killed job leaves nothing that looks complete.
    """
    raw_dir = Path(raw_dir)
    with atomic_directory(raw_dir) as tmp:
        work = tmp / "_unpacked"
        work.mkdir()
        for a in archives:
            logger.info("extracting %s", a)
            _unpack(Path(a), work)
        _strip_junk(work)
        _unpack_nested(work)
        found = find_root(work, root_name)
        root = tmp / root_name
        os.replace(found, root)
        shutil.rmtree(work, ignore_errors=True)
        for f in plain_files:
            shutil.copy2(f, root / Path(f).name)
    n = sum(1 for _ in (raw_dir / root_name).rglob("*") if _.is_file())
    logger.info("dataset root %s holds %d files", raw_dir / root_name, n)
    return raw_dir / root_name


def prepare_raw(params: dict, raw_dir: str | Path, download_dir: str | Path | None = None) -> Path:
    """Make ``raw_dir/<root>`` from one dataset's acquire params (see DatasetConfig.acquire_params).

    ``params`` holds ``name``, ``source`` and the source's settings; ``root`` is the dataset's
    root folder name.
    """
    from scalegmn.config import DATASET_ROOTS

    raw_dir = Path(raw_dir)
    name, source = params["name"], params["source"]
    root_name = DATASET_ROOTS[name]
    if source == "standin":
        from scalegmn.standins.zoos import build_standin

        with atomic_directory(raw_dir) as tmp:
            build_standin(name, tmp / root_name, size=params["size"], seed=params["seed"])
        return raw_dir / root_name
    if source == "download":
        manifest = json.loads((Path(download_dir) / "manifest.json").read_text())
        files = [Path(download_dir) / m["file"] for m in manifest]
        archives = [f for f, m in zip(files, manifest, strict=True) if m["archive"]]
        plain = [f for f, m in zip(files, manifest, strict=True) if not m["archive"]]
        return extract(archives, plain, raw_dir, root_name)
    path = Path(params["path"]).expanduser()
    if not path.exists():
        raise DataError(path, "local dataset path does not exist; fix datasets.<name>.local.path")
    if path.is_dir():
        # A local folder is linked, not copied: real zoos hold up to a million files.
        with atomic_directory(raw_dir) as tmp:
            (tmp / root_name).symlink_to(path.resolve(), target_is_directory=True)
        return raw_dir / root_name
    check_archive(path)
    return extract([path], [], raw_dir, root_name)
