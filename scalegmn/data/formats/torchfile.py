"""Load and save PyTorch state dicts safely: CPU tensors, no arbitrary pickles, atomic writes."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from scalegmn.atomic import atomic_write
from scalegmn.errors import DataError

logger = logging.getLogger(__name__)

_MAX_REASON = 160


def _clip(text: str) -> str:
    """First sentence of ``text`` on one line, at most ``_MAX_REASON`` characters."""
    text = " ".join(text.split()).split(". ")[0]
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _diagnose(path: Path, err: BaseException) -> str:
    """A short reason from the file's first bytes and torch's (pages long) error message."""
    if isinstance(err, OSError) and err.strerror:  # permissions, I/O errors: say so plainly
        return f"cannot read it ({err.strerror})"
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as os_err:
        return f"cannot read it ({os_err.strerror or os_err})"
    message = str(err)
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", message, re.DOTALL)
    if head.lstrip()[:1] == b"<" or b"<html" in head.lower():
        return "it is an HTML/XML page (a failed or login-walled download?)"
    if head.startswith(b"PK\x03\x04"):
        if "central directory" in message:
            return "damaged zip archive (truncated download?)"
        if unpickler and "global" in unpickler.group(1).lower():
            return "holds Python objects other than tensors, refused by the safe loader: " + _clip(
                unpickler.group(1)
            )
        return "damaged torch zip archive: " + _clip(message.splitlines()[0] if message else "")
    if head[:1] == b"\x80":  # a legacy (pre-zip) pickle
        return "damaged or unsupported legacy pickle: " + _clip(
            unpickler.group(1) if unpickler else f"{type(err).__name__}: {message}"
        )
    return f"neither a torch zip archive nor a pickle (starts with {head[:8]!r})"


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Load a ``torch.save``'d state dict onto the CPU without executing arbitrary pickles.

    Raises:
        DataError: the file is missing, empty, truncated, corrupt, not a torch file (e.g. an
            HTML page saved by a failed download), or does not hold a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found (check the dataset root and re-run the download)")
    if path.stat().st_size == 0:
        raise DataError(
            path, "not a readable torch file (truncated or corrupt?): the file is empty"
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the error says it all
            warnings.simplefilter("ignore", UserWarning)
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure here means the file is unusable
        raise DataError(
            path, f"not a readable torch file (truncated or corrupt?): {_diagnose(path, err)}"
        ) from None
    if not isinstance(sd, Mapping):
        raise DataError(path, f"expected a state dict (a mapping), found a {type(sd).__name__}")
    return dict(sd)


def save_state_dict(path: str | Path, sd: Mapping[str, Any]) -> None:
    """``torch.save`` a state dict atomically (temporary name in the same folder, then rename).

    Tensors should be contiguous CPU tensors that own their storage (``.clone()`` slices of a
    batch first, or ``torch.save`` writes the whole batch's storage).
    """
    with atomic_write(path) as tmp:
        torch.save(dict(sd), tmp)
    logger.debug("wrote %s", path)
