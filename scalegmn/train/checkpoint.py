"""Training files: the resume file (save, restore, set aside, discard) and ``best.pt`` (write, load).

Both are plain dicts of tensors and builtins, written atomically (:func:`scalegmn.atomic.atomic_write`)
and read back with :func:`safe_torch_load`, which runs no pickled code.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from scalegmn.atomic import atomic_write
from scalegmn.errors import DataError
from scalegmn.models.metanetworks import build_model
from scalegmn.train.experiments import TrainJob
from scalegmn.train.setup import resolve_device
from scalegmn.weightspace.graph import spec_from_dict

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "scalegmn-checkpoint/1"

#: Types a checkpoint (``best.pt``) or resume file (``.resume/last.pt``) may hold beyond what
#: ``torch.load(weights_only=True)`` accepts anyway (tensors, dicts, lists, tuples, str, numbers,
#: None, OrderedDict). Both are plain dicts of tensors and builtins, so nothing needs adding; a
#: type that must be stored in the future goes here, never ``weights_only=False``.
CHECKPOINT_SAFE_GLOBALS: tuple[Any, ...] = ()


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically (the bytes of a direct write)."""
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` that runs no pickled code: weights-only, with the
    :data:`CHECKPOINT_SAFE_GLOBALS` allow-list. A file holding anything else (a callable, a
    class) raises ``pickle.UnpicklingError``."""
    with torch.serialization.safe_globals(list(CHECKPOINT_SAFE_GLOBALS)):
        return torch.load(path, map_location="cpu", weights_only=True)


def _refused_global(err: BaseException) -> str | None:
    """The pickled global (a callable or class) that a weights-only load refused, if that is why
    ``err`` was raised."""
    if not isinstance(err, pickle.UnpicklingError):
        return None
    found = re.search(r"GLOBAL (\S+)", str(err))
    return found.group(1) if found else None


def _load_problem(err: BaseException) -> str:
    """One line saying why a torch file did not load (torch's messages span several lines)."""
    refused = _refused_global(err)
    if refused:
        return f"it holds a pickled object that is not on the allow-list ({refused}), which could run code"
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


# --- the resume file ---------------------------------------------------------------------------


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume(path: Path, fingerprint: str, model, optimizer, generator,
                loop_state: dict[str, Any]) -> None:
    """Write the whole training state (``loop_state`` is the loop's own, as plain builtins)."""
    save_torch(
        {
            "fingerprint": fingerprint,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": _rng_state(generator),
            "loop": loop_state,
        },
        path,
    )


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<UTC time>`` beside it (never overwriting one)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    k = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{k}")
        k += 1
    os.replace(path, target)
    return target


def restore_resume(path: Path, fingerprint: str, model, optimizer, generator,
                   parse: Callable[[dict[str, Any]], Any]) -> Any | None:
    """The loop state of the resume file ``path`` (``parse`` of its saved dict) with model,
    optimizer and RNGs restored from it; None to start from step 0 (a file of other
    settings, or a corrupt one).

    A file that cannot be read or applied (truncated by a full disk, say) is set aside as
    ``last.pt.corrupt-<time>`` with a warning naming it, and everything is left as it was before
    the attempt, so the run starts from step 0 exactly as an uninterrupted run would: a retry
    never meets the same file again.
    """
    before = [copy.deepcopy(x.state_dict()) for x in (model, optimizer)]
    rng_before = _rng_state(generator)
    try:
        saved = safe_torch_load(path)
        if not isinstance(saved, Mapping) or "fingerprint" not in saved:
            raise ValueError("not a resume file of scalegmn.train.loop.fit")
        if saved["fingerprint"] != fingerprint:
            log.warning("ignoring %s: it was written for other settings", path)
            return None
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        _set_rng_state(saved["rng"], generator)
        return parse(dict(saved["loop"]))
    except Exception as err:  # noqa: BLE001 - whatever is wrong with it, the fix is the same
        for x, sd in zip((model, optimizer), before, strict=True):
            x.load_state_dict(sd)
        _set_rng_state(rng_before, generator)
        moved = set_aside(path)
        log.warning(
            "resume file %s is unreadable (%s); set aside as %s, training restarts from step 0",
            path, _load_problem(err), moved,
        )
        return None


def discard_resume(path: Path) -> None:
    """After success: delete the resume file, temporary files a killed save left beside it, and
    its folder when nothing else (a set-aside corrupt file) is left there."""
    path.unlink(missing_ok=True)
    folder = path.parent
    if not folder.is_dir():
        return
    for tmp in folder.glob(f".{path.name}.*"):  # .last.pt.<random>.tmp/ of a killed save
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:  # not empty: a set-aside file the log named stays for the user
        pass


# --- best.pt -----------------------------------------------------------------------------------


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """(model, checkpoint dict) from a ``best.pt`` written by :func:`scalegmn.train.job.run_job`."""
    try:
        ckpt = safe_torch_load(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        if _refused_global(err):
            raise DataError(path, f"refused to load: {_load_problem(err)}; use only best.pt "
                            "files written by the train rule") from None
        raise DataError(path, f"not a readable checkpoint ({_load_problem(err)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DataError(path, "not a scalegmn checkpoint (expected best.pt written by the train rule)")
    job = TrainJob.from_settings(ckpt["settings"])  # older settings: memory keys mapped to execution
    spec = spec_from_dict(ckpt["spec"])  # a NetworkSpec, or a ZooSpec (mixed architectures)
    model = build_model(job.model, spec, task=ckpt["task"], n_outputs=ckpt["n_outputs"],
                        execution=job.execution)
    model.load_state_dict(ckpt["model_state"])
    model.to(resolve_device(device)).eval()
    return model, ckpt
