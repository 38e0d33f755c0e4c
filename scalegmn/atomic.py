"""Atomic writes: a file (or a folder) is built under a temporary name next to the target, then renamed.

A job killed mid-write leaves at most a hidden ``.<name>.*.tmp/`` folder, never a truncated
output that a rerun would mistake for a finished one. The temporary file keeps the target's
own name, because some writers record it inside the file (``torch.save`` names its zip root
after the file): the bytes are then the same as a direct write, and reproducible.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path with ``path``'s name; move it onto ``path`` when the block succeeds.

    Parent folders are created. On any exception the temporary file is removed and ``path``
    is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    tmp = tmp_dir / path.name
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty folder ``<path>.tmp``; when the block succeeds it replaces ``path``.

    Any stale ``<path>.tmp`` of a killed run is removed first; on an exception the temporary
    folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
