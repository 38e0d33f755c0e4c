"""Mixed precision of a model's computation: ``execution.precision`` as torch scopes and flags.

- ``float32`` / ``float64``: parameters and computation in that dtype.
- ``tf32``: float32 parameters; on CUDA, matmuls and convolutions may use TF32 tensor cores
  (10-bit mantissa products, float32 accumulation). A process-wide flag
  (:func:`apply_backend_flags`, set when a model is built): backward matmuls run outside any
  forward scope. On CPU, tf32 computes exactly as float32.
- ``bf16``: float32 parameters; the forward runs under ``torch.autocast(dtype=bfloat16)``
  (:func:`precision_scope`), so matmuls take bfloat16 inputs. Kept in float32 (:func:`fp32`):
  the LayerNorms, the invariant maps ``|x|`` and ``x / ‖x‖`` (:class:`scalegmn.nn.invariant.Tau`)
  and ``e / ‖e‖²`` (:func:`scalegmn.nn.equivariant.inverse_edge`): a norm or a reciprocal in
  bfloat16 (8-bit mantissa) would break the symmetry the map exists for by ~1e-2 relative;
  and the readout/editing head (G or E rows, cheap), so outputs are not quantised to bfloat16.
  The lean autograd Functions (:mod:`scalegmn.nn.lean`) run in float32 as well (their
  hand-written backward is float32): with bf16, ``memory: plain`` gets the most from bfloat16.
"""

from __future__ import annotations

import contextlib
import os

import torch

#: The autocast dtype of each precision that autocasts.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16}


def apply_backend_flags(precision: str, deterministic: bool) -> None:
    """Set the process-wide flags of ``precision`` and ``deterministic`` (CUDA only; no-op
    effect on CPU, whose kernels are deterministic and have no TF32).

    ``deterministic``: ``torch.use_deterministic_algorithms(True)`` (index_add_ on CUDA then
    takes its slow, sorted path) and cuBLAS's fixed workspace (``CUBLAS_WORKSPACE_CONFIG``, set
    when unset; read when CUDA creates its handle).
    """
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    if tf32:  # cuDNN allows TF32 by default already; matmuls do not
        torch.backends.cudnn.allow_tf32 = True
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)


@contextlib.contextmanager
def precision_scope(precision: str, device_type: str):
    """The autocast scope of ``precision`` on ``device_type`` (none unless it autocasts)."""
    dtype = AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type, dtype=dtype):
        yield


def autocasting(t: torch.Tensor) -> bool:
    """Whether autocast is on for ``t``'s device (a Python flag: no synchronisation)."""
    return torch.is_autocast_enabled(t.device.type)


@contextlib.contextmanager
def fp32_scope(t: torch.Tensor):
    """Autocast off for ``t``'s device inside (a float32 region of an autocast forward)."""
    if not autocasting(t):
        yield
        return
    with torch.autocast(t.device.type, enabled=False):
        yield


def fp32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is a lower-precision float (bfloat16/float16), else ``t``."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t
