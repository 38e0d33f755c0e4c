"""How a model executes: precision and the memory policy of a training step, in one place.

:class:`ExecutionConfig` decides nothing about *what* a model computes, only how: every memory
mode gives the same outputs and gradients up to float rounding (tests/nn/test_lean.py,
tests/nn/test_paths.py, tests/train/test_micro_batch.py). Its fields are the keys of the
``execution:`` config section.

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

``micro_batch_size`` is independent of the mode: the training step accumulates gradients over
micro-batches (the same step, one micro-batch's memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scalegmn.errors import ConfigError

PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
MEMORY_MODES = ("auto", "lean", "plain", "checkpoint")


@dataclass(frozen=True)
class ExecutionConfig:
    """Precision and memory policy of a model and its training step.

    Attributes:
        precision: dtype of the model's parameters and computation: ``float32`` | ``float64``
            (default ``float32``).
        memory: ``auto`` | ``lean`` | ``plain`` | ``checkpoint`` (see the module docstring;
            default ``auto``).
        lean_min_mb: with ``memory: auto``, use lean autograd only for batches where plain
            autograd would keep more than this many MB of per-edge activations
            (``n_layers x 18 x edges x d_hid x bytes``); ``>= 0``, default 0 (always lean).
        checkpoint_chunk: with ``memory: checkpoint``, a WeightBatch runs in chunks of this
            many graphs (bounds the activations recomputed at once; same result); ``>= 1``,
            default 32.
        micro_batch_size: accumulate each training step's gradient over micro-batches of this
            many networks (same step, one micro-batch's activation memory); ``>= 1`` or
            ``None`` (default: the whole batch at once).
    """

    precision: str = "float32"
    memory: str = "auto"
    lean_min_mb: float = 0.0
    checkpoint_chunk: int = 32
    micro_batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError("execution.precision",
                              f"{self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.memory not in MEMORY_MODES:
            raise ConfigError("execution.memory",
                              f"{self.memory!r} is not one of {', '.join(MEMORY_MODES)}")
        if not self.lean_min_mb >= 0:
            raise ConfigError("execution.lean_min_mb", f"{self.lean_min_mb} must be at least 0")
        if self.checkpoint_chunk < 1:
            raise ConfigError("execution.checkpoint_chunk",
                              f"{self.checkpoint_chunk} must be at least 1")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ConfigError("execution.micro_batch_size",
                              f"{self.micro_batch_size} must be at least 1")

    @classmethod
    def from_settings(cls, model_cfg, optim_cfg=None) -> ExecutionConfig:
        """The policy the old knobs describe: ``ModelConfig.checkpoint`` / ``checkpoint_chunk``
        / ``lean_autograd`` / ``lean_min_mb`` and ``OptimConfig.micro_batch_size``.

        ``checkpoint: true`` -> ``memory: checkpoint`` (it always overrode lean autograd);
        ``lean_autograd: false`` -> ``plain``; otherwise ``auto`` with the same ``lean_min_mb``.
        """
        if model_cfg.checkpoint:
            memory = "checkpoint"
        elif model_cfg.lean_autograd:
            memory = "auto"
        else:
            memory = "plain"
        return cls(
            memory=memory,
            lean_min_mb=float(model_cfg.lean_min_mb),
            checkpoint_chunk=int(model_cfg.checkpoint_chunk),
            micro_batch_size=None if optim_cfg is None else optim_cfg.micro_batch_size,
        )

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of :attr:`precision`."""
        return PRECISIONS[self.precision]

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
