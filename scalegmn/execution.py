"""How a model executes: precision and the memory policy of a training step, in one place.

:class:`ExecutionConfig` decides nothing about *what* a model computes, only how: every memory
mode gives the same outputs and gradients up to float rounding (tests/nn/test_lean.py,
tests/nn/test_paths.py, tests/train/test_micro_batch.py). Its fields are the keys of the
``execution:`` config section (overridden per table, column and row, as ``model:`` and
``optim:`` are). Standard library only: the Snakefile validates the section at parse time; the
torch dtype of a precision is :data:`scalegmn.models.metanetworks.DTYPES`.

Memory modes (``memory``), from most to least activation memory per training step:

- ``plain``: plain autograd keeps every intermediate (about 18 ``(E, d)`` tensors per layer).
- ``lean``: the per-edge gated blocks keep only their inputs and one pre-activation and rebuild
  the rest in backward, row chunk by row chunk (:mod:`scalegmn.nn.lean`); the edge embedding
  and ReScaleEq's ``Γ_e e`` are recomputed too (activation checkpointing of those two only).
  About a third of plain's memory, and faster than plain on CPU despite the recompute.
- ``auto`` (default): ``lean`` for batches where plain autograd would keep more than
  ``lean_min_mb`` MB of per-edge activations, ``plain`` below; with ``lean_min_mb = 0``, lean
  for every batch.
- ``checkpoint``: full activation checkpointing per layer (each layer keeps its inputs and
  outputs only; about a third more compute); a WeightBatch runs in chunks of
  ``checkpoint_chunk`` graphs.

``resident_max_mb`` is the data's memory policy: splits larger than it are streamed block by
block instead of loaded whole (:mod:`scalegmn.data.stream`); a different batch order, the same
training otherwise.

``micro_batch_size`` is independent of the mode: the training step accumulates gradients over
micro-batches (the same step, one micro-batch's memory).

Precision (``precision``; the ``training.precision`` of issue 12 lives here, the one home of how
a model runs): ``float32`` | ``float64`` | ``tf32`` | ``bf16``, see :mod:`scalegmn.nn.precision`.
``deterministic`` sets ``torch.use_deterministic_algorithms`` when the model is built: on CUDA
the message sums (``index_add_``) then take a sorted, slower path (bit-identical reruns); off,
CUDA's atomic adds make reruns differ in the last bits. CPU results are deterministic either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalegmn import schema
from scalegmn.schema import setting

PRECISIONS = ("float32", "float64", "tf32", "bf16")
MEMORY_MODES = ("auto", "lean", "plain", "checkpoint")


@dataclass(frozen=True)
class ExecutionConfig(schema.Section):
    """Precision and memory policy of a model and its training step; each key's doc is in its
    field (see the module docstring for the memory modes). Overridden per table, column and row
    under ``execution:`` in config.yaml; a value out of range raises ConfigError naming
    ``execution.<key>``."""

    _section = "execution"

    precision: str = setting(
        "float32", choices=PRECISIONS,
        doc="the model's computation: float32 | float64 (parameters and computation in that dtype) | "
        "tf32 (float32 parameters, TF32 matmuls on CUDA; float32 on CPU) | bf16 (float32 parameters, "
        "bfloat16 autocast; LayerNorm, |x|, x/||x||, e/||e||^2 and the lean blocks in float32); "
        "the issue's training.precision")
    deterministic: bool = setting(
        False, doc="torch.use_deterministic_algorithms: on CUDA index_add_ (every message sum) takes "
        "a slower sorted path and cuBLAS a fixed workspace, for bit-identical reruns; CPU kernels are "
        "deterministic either way (no cost there)")
    memory: str = setting(
        "auto", choices=MEMORY_MODES,
        doc="training memory policy: auto (lean above lean_min_mb, else plain) | lean (scalegmn.nn.lean: "
        "about a third of plain's activation memory) | plain (plain autograd) | checkpoint (full "
        "activation checkpointing per layer: about a third more compute); same results")
    lean_min_mb: float = setting(
        0.0, min=0.0, doc="with memory: auto, use lean autograd only for batches where plain autograd "
        "would keep more than this many MB of per-edge activations (n_layers x 18 x edges x d_hid x "
        "bytes); 0: always")
    checkpoint_chunk: int = setting(
        32, min=1, doc="with memory: checkpoint, a WeightBatch runs in chunks of this many graphs "
        "(bounds the activations recomputed at once; the result is the same)")
    micro_batch_size: int | None = setting(
        None, min=1, doc="accumulate each training step's gradient over micro-batches of this many "
        "networks: the same step, one micro-batch's activation memory (null: the whole batch)")

    resident_max_mb: float | None = setting(
        4096.0, min=0.0, doc="a split whose cached weights take more than this many MB is not loaded "
        "whole: the job streams it from its zarr shards (scalegmn.data.stream: background reader, "
        "pinned memory on CUDA; training shuffles by block, evaluation reads in order), in about "
        "(prefetch + 2) x 4096 networks of memory; null: every split resident")

    @property
    def checkpoint(self) -> bool:
        """Full activation checkpointing per layer."""
        return self.memory == "checkpoint"

    @property
    def lean(self) -> bool:
        """Whether the lean blocks may run (``auto`` or ``lean``; per batch, see :meth:`use_lean`)."""
        return self.memory in ("auto", "lean")

    def use_lean(self, plain_mb: float) -> bool:
        """Lean autograd for a training batch whose plain autograd would keep ``plain_mb`` MB."""
        if self.memory == "lean":
            return True
        return self.memory == "auto" and plain_mb > self.lean_min_mb


#: The default policy (float32, ``memory: auto`` with ``lean_min_mb = 0``, whole batches).
DEFAULT_EXECUTION = ExecutionConfig()
