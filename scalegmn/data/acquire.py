"""Get a dataset onto disk: download (verified), extract, link a local folder, or build the stand-in.

Downloads stream to ``<name>.part`` with progress in the log, retry transient failures (HTTP
5xx/429, a refused or broken connection, a truncated body) with exponential backoff, resume
with an HTTP ``Range`` request where the server answers 206, follow redirects, and are verified
BEFORE they are renamed to their final name: magic bytes (an HTML page served with status 200
is an error naming the URL; so is a file whose type is not the declared ``download.archive``),
archive integrity (every zip member CRC-checked, every tar member read) and the sha256 when one
is configured.

A failure that cannot succeed on a retry (an HTML page, HTTP 4xx, a corrupt archive, a checksum
or archive-type mismatch) raises :class:`~scalegmn.errors.DataError` at once and leaves no file.
A transient failure that outlasts every retry raises :class:`TransientDownloadError` and KEEPS
the partial file beside a small record of its URL and expected size: the next run resumes it
when both are unchanged (``If-Range`` guards against a file replaced upstream).

Extraction unpacks into a temporary folder, unpacks nested zips (the DWS whole-folder zip),
drops ``__MACOSX`` junk, finds the dataset root folder and renames the result into place. A
local folder is not copied: ``raw/<root>`` links to the dataset root found in it the same way
(:func:`find_root`), through the user's path as written, so the link follows that path.
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

from scalegmn.atomic import atomic_directory, atomic_write
from scalegmn.errors import ConfigError, DataError
from scalegmn.vocabulary import DATASET_ROOTS, GENERIC_ROOT

logger = logging.getLogger(__name__)

ARCHIVE_KINDS = ("zip", "tar", "tar.gz", "tar.xz")
#: the magic-byte kind (:func:`sniff`) each declared archive type must have, and back
_MAGIC = {"zip": "zip", "tar": "tar", "tar.gz": "gzip", "tar.xz": "xz"}
_DECLARED = {v: k for k, v in _MAGIC.items()}
_TAR_MODES = {"tar": "r:", "tar.gz": "r:gz", "tar.xz": "r:xz"}
_DESCRIBE = {"zip": "a zip archive", "tar": "a plain tar archive", "gzip": "gzip-compressed (tar.gz)",
             "xz": "xz-compressed (tar.xz)", "html": "an HTML page", "text": "text",
             "unknown": "not an archive"}
_PLAIN_SUFFIXES = (".csv", ".json", ".txt")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
#: folder of the files in progress of ``download_all(urls, out)``: ``<out>.partial`` (kept)
PARTIAL_SUFFIX = ".partial"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


class _Retryable(Exception):
    """A transient failure: try again (resuming where possible)."""


class _RangeRefused(Exception):
    """The server refused the resume request (HTTP 416): start the file over."""


class TransientDownloadError(DataError):
    """A transient failure (server error, refused or broken connection) outlasted every retry.

    The partial file is kept; the next run resumes it. Every other :class:`DataError` of a
    download is permanent: retrying would fetch the same wrong bytes again.
    """


def sniff_bytes(head: bytes) -> str:
    """Kind of content from its first (up to 512) bytes: zip, gzip, xz, tar, html, text or unknown."""
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


def sniff(path: str | Path) -> str:
    """Kind of a file from its first bytes: zip, gzip, xz, tar, html, text or unknown."""
    with open(path, "rb") as f:
        return sniff_bytes(f.read(512))


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
    """Hex SHA-256 of the file at ``path``, read ``block`` bytes at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _check_kind(kind: str, url: str, *, archive: bool, archive_type: str, key: str) -> None:
    """The content kind against what the URL must be. Raises a permanent DataError(url, ...)."""
    if kind == "html":
        raise DataError(url, "the server sent an HTML page instead of the file (a login, viewer "
                             "or quota page?); check the URL gives the file itself")
    if not archive:
        return
    if archive_type != "auto":
        if kind != _MAGIC[archive_type]:
            fits = f"set {key}.archive to {_DECLARED[kind]} or auto" if kind in _DECLARED else "check the URL"
            raise DataError(url, f"{key}.archive is {archive_type}, but the file is "
                                 f"{_DESCRIBE.get(kind, kind)}; {fits}")
    elif kind not in _DECLARED:
        raise DataError(url, f"expected an archive (zip/tar/tar.gz/tar.xz), got {kind} content")


def verify_download(
    path: str | Path, url: str, *, archive: bool, sha256: str | None, archive_type: str = "auto",
    key: str = "download",
) -> str:
    """Check a downloaded file before accepting it; return its kind. Raises DataError(url, ...)."""
    kind = sniff(path)
    _check_kind(kind, url, archive=archive, archive_type=archive_type, key=key)
    if archive:
        check_archive(path, url, archive_type=archive_type)
    if sha256 is not None:
        got = sha256_of(path)
        if got != sha256.lower():
            raise DataError(url, f"sha256 mismatch: expected {sha256.lower()}, got {got}; the file "
                                 f"changed upstream or the download is corrupt (check {key}.sha256)")
    return kind


def _tar_mode(kind: str, archive_type: str) -> str:
    return _TAR_MODES[archive_type] if archive_type in _TAR_MODES else "r:*"


def check_archive(path: str | Path, name: str | None = None, *, archive_type: str = "auto") -> None:
    """Read every member of a zip (CRC check) or tar (full read); DataError if it is damaged.

    ``archive_type`` (zip, tar, tar.gz, tar.xz; default auto) opens the file as that type.
    """
    where = name or str(path)
    kind = sniff(path)
    if kind == "html":
        raise DataError(where, "is an HTML page, not an archive (a login or viewer page saved "
                               "under an archive name?); download the file itself")
    if kind not in _DECLARED:
        raise DataError(where, f"is not a zip/tar archive (content looks like {kind})")
    if archive_type != "auto" and kind != _MAGIC[archive_type]:
        raise DataError(where, f"download.archive is {archive_type}, but the file is "
                               f"{_DESCRIBE[kind]}; set download.archive to {_DECLARED[kind]} or auto")
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                raise DataError(where, f"archive member {bad!r} is corrupt (CRC mismatch)")
        else:
            with tarfile.open(path, _tar_mode(kind, archive_type)) as t:
                for member in t:
                    if member.isfile():
                        f = t.extractfile(member)
                        while f is not None and f.read(1 << 20):
                            pass
    except DataError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise DataError(where, f"archive is truncated or corrupt: {_one_line(err)}") from None


# ---------------------------------------------------------------------------------------------
# one download: <dest>.part + <dest>.part.json (url, expected size, validator), kept on
# transient failures so that the next run resumes them


def _part_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _forget_part(part: Path, meta: Path) -> None:
    part.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)


def _content_range(value: str | None) -> tuple[int, int] | None:
    """(first byte, total size) of a ``Content-Range: bytes a-b/total`` header, or None."""
    try:
        unit, rest = value.split(" ", 1)
        span, total = rest.split("/")
        return int(span.split("-")[0]), int(total)
    except (AttributeError, ValueError):
        return None


def _open(url: str, offset: int, timeout: float, if_range: str | None = None):
    req = urllib.request.Request(url, headers={"User-Agent": "scalegmn-pipeline"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
        if if_range:
            req.add_header("If-Range", if_range)
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # follows redirects
    except urllib.error.HTTPError as err:
        if err.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {err.code}") from None
        if err.code == 416 and offset:
            raise _RangeRefused() from None
        raise DataError(url, f"HTTP {err.code} {err.reason}; check the URL") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Retryable(_one_line(getattr(err, "reason", err))) from None


def _fetch_once(url: str, part: Path, meta_path: Path, timeout: float, block: int, check_head,
                events: list | None) -> None:
    """One attempt: append to ``part`` (resuming if it belongs to ``url`` and the server allows
    it) until the body ends. ``check_head(bytes)`` sees the first 512 bytes of a fresh body."""
    meta = _read_json(meta_path) if part.exists() else None
    offset = part.stat().st_size if meta else 0
    if offset and meta.get("total") == offset:
        return  # complete, but not verified yet (the last run stopped in between)
    if offset and (meta.get("total") is None or offset > meta["total"]):
        _forget_part(part, meta_path)  # no size to check a resume against
        offset = 0
    try:
        resp = _open(url, offset, timeout, meta.get("validator") if offset else None)
    except _RangeRefused:
        logger.info("the server refused to resume %s; starting it over", url)
        _forget_part(part, meta_path)
        return _fetch_once(url, part, meta_path, timeout, block, check_head, events)
    with resp:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        if offset and status == 206:
            first, total = _content_range(resp.headers.get("Content-Range")) or (None, None)
            if first != offset or total != meta["total"]:
                logger.info("%s now has %s bytes, not %s: starting it over", url, total, meta["total"])
                _forget_part(part, meta_path)
                resp.close()
                return _fetch_once(url, part, meta_path, timeout, block, check_head, events)
            logger.info("resuming %s at byte %d of %d", url, offset, total)
            if events is not None:
                events.append({"event": "resume", "url": url, "offset": offset, "total": total})
            mode, head_checked = "ab", True
        else:
            if offset:
                logger.info("server ignored the Range request (or the file changed); restarting %s", url)
            offset, mode, head_checked = 0, "wb", False
            total = int(length) if length else None
            validator = resp.headers.get("ETag")
            if not validator or validator.startswith("W/"):
                validator = resp.headers.get("Last-Modified")
            with atomic_write(meta_path) as tmp:
                tmp.write_text(json.dumps({"url": url, "total": total, "validator": validator}))
        done, last_log, head = offset, time.monotonic(), b""
        with open(part, mode) as out:
            try:
                while chunk := resp.read(block):
                    if not head_checked:  # an HTML page or the wrong type stops before the rest
                        head += chunk[:512]
                        if len(head) >= 512:
                            check_head(head[:512])
                            head_checked = True
                    out.write(chunk)
                    done += len(chunk)
                    if time.monotonic() - last_log > 5:
                        last_log = time.monotonic()
                        pct = f" ({100 * done / total:.1f}%)" if total else ""
                        logger.info("downloaded %.1f MB%s of %s", done / 1e6, pct, url)
            except (OSError, http.client.HTTPException) as err:  # broken connection, IncompleteRead
                raise _Retryable(f"connection broken after {done} bytes: {_one_line(err)}") from None
    if total is not None and done < total:
        raise _Retryable(f"truncated body: got {done} of {total} bytes")


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    archive: bool | None = None,
    archive_type: str = "auto",
    retries: int = 4,
    backoff: float = 2.0,
    timeout: float = 60.0,
    block: int = 1 << 20,
    key: str = "download",
    events: list | None = None,
) -> Path:
    """Download ``url`` to ``dest``, verified.

    Args:
        url: the URL to fetch.
        dest: the file to write; ``dest.part`` holds the bytes in progress.
        sha256: expected checksum, or None to skip that check.
        archive: the file must be an intact archive (default: unless the URL ends .csv/.json/.txt).
        archive_type: auto, or the declared type (zip, tar, tar.gz, tar.xz) the file must have.
        retries: attempts for transient failures (HTTP 5xx/429, refused, broken or truncated
            bodies); each retry resumes with ``Range`` and waits ``backoff * 2**attempt`` seconds.
        backoff: base wait in seconds between retries (see ``retries``).
        timeout: socket timeout in seconds of each request.
        block: bytes read and written at a time.
        key: the config key of these settings, named in messages (``datasets.<name>.download``).
        events: a list that gets one dict per retry and per resume (for a summary line).

    Raises:
        TransientDownloadError: the retries ran out; ``dest.part`` is kept for the next run.
        DataError: a permanent failure; nothing is left at ``dest`` or ``dest.part``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, meta_path = _part_paths(dest)
    archive = expects_archive(url) if archive is None else archive
    meta = _read_json(meta_path)
    if part.exists() and (meta is None or meta.get("url") != url):
        logger.info("discarding a partial download that is not of %s", url)
        _forget_part(part, meta_path)
    elif part.exists():
        logger.info("found %d bytes of %s from an earlier run", part.stat().st_size, url)

    def check_head(head: bytes) -> None:
        _check_kind(sniff_bytes(head), url, archive=archive, archive_type=archive_type, key=key)

    try:
        for attempt in range(retries):
            try:
                _fetch_once(url, part, meta_path, timeout, block, check_head, events)
                break
            except _Retryable as err:
                wait = backoff * 2**attempt if attempt + 1 < retries else 0.0
                if events is not None:
                    events.append({"event": "retry", "url": url, "attempt": attempt + 1,
                                   "reason": str(err), "wait": wait})
                if attempt + 1 == retries:
                    raise TransientDownloadError(
                        url, f"download failed after {retries} attempts: {err}; the partial file "
                             "is kept and the next run resumes it") from None
                logger.warning("attempt %d/%d for %s failed (%s); retrying in %.1f s",
                               attempt + 1, retries, url, err, wait)
                time.sleep(wait)
        kind = verify_download(part, url, archive=archive, sha256=sha256, archive_type=archive_type,
                               key=key)
        os.replace(part, dest)
        meta_path.unlink(missing_ok=True)
    except TransientDownloadError:
        raise
    except DataError:  # permanent: the same bytes would come again
        _forget_part(part, meta_path)
        raise
    logger.info("downloaded %s -> %s (%s, %d bytes)", url, dest, kind, dest.stat().st_size)
    return dest


def partial_dir(out_dir: str | Path) -> Path:
    """Where :func:`download_all` keeps the files in progress of ``out_dir`` between runs."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)


def download_all(
    urls: list[str] | tuple[str, ...],
    out_dir: str | Path,
    *,
    sha256: list[str | None] | tuple[str | None, ...] | None = None,
    archive_type: str = "auto",
    retries: int = 4,
    backoff: float = 2.0,
    key: str = "download",
    events: list | None = None,
) -> Path:
    """Download every URL into ``out_dir``, which appears complete or not at all.

    Files are fetched into ``<out_dir>.partial/``, which a failed run leaves behind: the next
    run keeps each file already verified for the same URL (and checksum) and resumes a partial
    one. When every URL is in, ``manifest.json`` (url, file, bytes, sha256, archive, kind per
    entry) is written and the folder is renamed to ``out_dir``.
    """
    out_dir = Path(out_dir)
    work = partial_dir(out_dir)
    state = work / ".verified"
    state.mkdir(parents=True, exist_ok=True)
    sha256 = list(sha256) if sha256 else [None] * len(urls)
    manifest = []
    for i, (url, sha) in enumerate(zip(urls, sha256, strict=True)):
        name = file_name_for(url, i)
        path, record = work / name, state / f"{name}.json"
        done = _read_json(record)
        if (done and path.exists() and done.get("url") == url and done.get("bytes") == path.stat().st_size
                and (sha is None or sha.lower() == done.get("sha256"))):
            logger.info("%s: verified in an earlier run, kept", path.name)
        else:
            record.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            download(url, path, sha256=sha, archive_type=archive_type, retries=retries,
                     backoff=backoff, key=key, events=events)
            done = {"url": url, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
            with atomic_write(record) as tmp:
                tmp.write_text(json.dumps(done))
        manifest.append({"url": url, "file": name, "bytes": done["bytes"], "sha256": done["sha256"],
                         "archive": expects_archive(url), "kind": sniff(path)})
    keep = {m["file"] for m in manifest}
    for stale in work.iterdir():  # parts of URLs no longer configured
        if stale.name not in keep and stale != state:
            (shutil.rmtree if stale.is_dir() else os.remove)(stale)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(state)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(work, out_dir)
    return out_dir


def download_summary(name: str, events: list[dict], log_path: str | Path) -> str | None:
    """One console line on what the job log holds about a download, or None when it went plainly.

    Args:
        name: the dataset's name, which starts the line.
        events: the ``events`` list filled by :func:`download_all` (retries and resumes).
        log_path: the job log the line points to for details.

    Returns:
        e.g. ``"mnist_inr: download 2 retries (6 s of backoff; last: ...); details in <log>"``.
    """
    retries = [e for e in events if e["event"] == "retry"]
    resumes = [e for e in events if e["event"] == "resume"]
    parts = []
    if retries:
        waited = sum(e["wait"] for e in retries)
        parts.append(f"{len(retries)} {'retry' if len(retries) == 1 else 'retries'} "
                     f"({waited:.0f} s of backoff; last: {retries[-1]['reason']})")
    if resumes:
        mb = sum(e["offset"] for e in resumes) / 1e6
        parts.append(f"resumed {len(resumes)} time(s), {mb:.1f} MB not fetched again")
    if not parts:
        return None
    return f"{name}: download {', '.join(parts)}; details in {log_path}"


# ---------------------------------------------------------------------------------------------
# extraction


def _safe_member(name: str, archive: Path) -> None:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise DataError(archive, f"archive member {name!r} would escape the target folder")


def _unpack(archive: Path, into: Path, archive_type: str = "auto") -> None:
    kind = sniff(archive)
    if archive_type != "auto" and kind != _MAGIC[archive_type]:
        fits = f"set download.archive to {_DECLARED[kind]} or auto" if kind in _DECLARED else "check the file"
        raise DataError(archive, f"download.archive is {archive_type}, but the file is "
                                 f"{_DESCRIBE.get(kind, kind)}; {fits}")
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    _safe_member(name, archive)
                z.extractall(into)
        elif kind in ("tar", "gzip", "xz"):
            with tarfile.open(archive, _tar_mode(kind, archive_type)) as t:
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


#: how deep below an extracted archive or a local folder the dataset root is looked for
ROOT_SEARCH_DEPTH = 4


def find_root(folder: Path, root_name: str, max_depth: int = ROOT_SEARCH_DEPTH) -> Path:
    """The dataset root inside an extracted archive or a local folder, found the same way in both:
    ``folder`` itself when it is named ``root_name``; else the shallowest directory named
    ``root_name`` (breadth first, at most ``max_depth`` levels down, names in sorted order);
    else the single top-level directory; else the folder itself. Hidden entries and
    ``__MACOSX`` are ignored."""
    folder = Path(folder)
    if folder.name == root_name:
        return folder
    level = [folder]
    for _ in range(max_depth):
        below = []
        for d in level:
            try:
                subdirs = [e for e in os.scandir(d) if e.is_dir() and not e.name.startswith(".")
                           and e.name != "__MACOSX"]
            except OSError:
                continue
            subdirs.sort(key=lambda e: e.name)
            for e in subdirs:
                if e.name == root_name:
                    return Path(e.path)
            below += [Path(e.path) for e in subdirs]
        if not below:
            break
        level = below
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def find_manifest_root(folder: Path, max_depth: int = ROOT_SEARCH_DEPTH) -> Path:
    """A generic zoo's root: the shallowest folder holding ``manifest.csv`` (breadth first, sorted
    names, hidden entries and ``__MACOSX`` skipped); ``folder`` itself when none does."""
    level = [Path(folder)]
    for _ in range(max_depth + 1):
        for d in level:
            if (d / "manifest.csv").is_file():
                return d
        below = []
        for d in level:
            try:
                below += sorted(Path(e.path) for e in os.scandir(d) if e.is_dir() and not e.name.startswith(".")
                                and e.name != "__MACOSX")
            except OSError:
                continue
        if not below:
            break
        level = below
    return Path(folder)


def _dataset_root(folder: Path, name: str) -> Path:
    """The root of dataset ``name`` in ``folder``: by its root folder's name, or (your own zoo) by its manifest."""
    return find_root(folder, DATASET_ROOTS[name]) if name in DATASET_ROOTS else find_manifest_root(folder)


def extract(archives: list[Path], plain_files: list[Path], raw_dir: str | Path, root_name: str,
            archive_type: str = "auto", name: str | None = None) -> Path:
    """Build ``raw_dir/root_name`` from archives (+ plain files copied into the root).

    Built in ``raw_dir.tmp`` and renamed, so a killed job leaves nothing that looks complete.
    ``archive_type`` (the declared ``download.archive``) opens each archive as that type.
    """
    raw_dir = Path(raw_dir)
    with atomic_directory(raw_dir) as tmp:
        work = tmp / "_unpacked"
        work.mkdir()
        for a in archives:
            logger.info("extracting %s", a)
            _unpack(Path(a), work, archive_type)
        _strip_junk(work)
        _unpack_nested(work)
        found = find_root(work, root_name) if name is None else _dataset_root(work, name)
        root = tmp / root_name
        os.replace(found, root)
        shutil.rmtree(work, ignore_errors=True)
        for f in plain_files:
            shutil.copy2(f, root / Path(f).name)
    n = sum(1 for _ in (raw_dir / root_name).rglob("*") if _.is_file())
    logger.info("dataset root %s holds %d files", raw_dir / root_name, n)
    return raw_dir / root_name


# ---------------------------------------------------------------------------------------------
# local sources


def local_path(path: str | Path) -> Path:
    """The user's ``local.path`` as an absolute path, ``~`` expanded, symlinks NOT resolved (so a
    link made from it follows the path, wherever it points later)."""
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def local_root(name: str, path: str | Path) -> Path:
    """The dataset root that ``datasets.<name>.local.path`` names: the archive itself, or the
    root folder found in the folder by :func:`find_root` (the folder itself, or one holding it).

    Raises ConfigError naming the key and the path when the path does not exist.
    """
    path = local_path(path)
    if not path.exists():
        raise ConfigError(f"datasets.{name}.local.path",
                          f"{path} does not exist (moved or deleted?); point local.path at the "
                          "dataset's folder or archive, or put it back")
    return _dataset_root(path, name) if path.is_dir() else path


def folder_listing(root: str | Path) -> dict:
    """What decides a local folder's content: its files' relative names, sizes and modification
    times (hidden entries skipped, as the readers skip them), as a count, a byte total and a
    sha256 over the sorted listing. Cheap: one ``stat`` per file, no file is read."""
    root = Path(root)
    rows, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if f.startswith("."):
                continue
            p = os.path.join(dirpath, f)
            try:
                st = os.stat(p)
            except OSError:  # a dangling link: listed, so that fixing it changes the listing
                rows.append(f"{os.path.relpath(p, root)}\t-1\t-1")
                continue
            total += st.st_size
            rows.append(f"{os.path.relpath(p, root)}\t{st.st_size}\t{st.st_mtime_ns}")
    rows.sort()
    digest = hashlib.sha256("\n".join(rows).encode("utf-8", "surrogateescape")).hexdigest()
    return {"files": len(rows), "bytes": total, "sha256": digest}


def prepare_raw(params: dict, raw_dir: str | Path, download_dir: str | Path | None = None) -> Path:
    """Make ``raw_dir/<root>`` from one downloaded or local dataset's acquire params (see
    DatasetConfig.acquire_params).

    ``params`` holds ``name``, ``source`` and the source's settings; ``root`` is the dataset's
    root folder name.
    """
    raw_dir = Path(raw_dir)
    name, source = params["name"], params["source"]
    root_name = DATASET_ROOTS.get(name, GENERIC_ROOT)
    if source == "standin":  # built by rule build_standin (scalegmn.data.standins.zoos)
        raise ValueError(f"{name}: a stand-in is built by build_standin_raw, not extracted")
    if source == "download":
        manifest = json.loads((Path(download_dir) / "manifest.json").read_text())
        files = [Path(download_dir) / m["file"] for m in manifest]
        archives = [f for f, m in zip(files, manifest, strict=True) if m["archive"]]
        plain = [f for f, m in zip(files, manifest, strict=True) if not m["archive"]]
        return extract(archives, plain, raw_dir, root_name, params.get("archive", "auto"), name=name)
    try:
        found = local_root(name, params["path"])
    except ConfigError as err:
        raise DataError(local_path(params["path"]), f"does not exist (moved or deleted?); fix "
                                                    f"{err.key} or put the folder back") from None
    if found.is_dir():
        # A local folder is linked, not copied: real zoos hold up to a million files.
        with atomic_directory(raw_dir) as tmp:
            (tmp / root_name).symlink_to(found, target_is_directory=True)
        logger.info("linked %s -> %s", raw_dir / root_name, found)
        return raw_dir / root_name
    check_archive(found)
    return extract([found], [], raw_dir, root_name, name=name)
