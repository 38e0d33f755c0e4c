"""A training step makes no host-device synchronisation (issue 12).

On CPU the equivalent guard: every Tensor method that reads a tensor's value into Python (or
copies it to the host) raises when called from scalegmn's own code during one training step
(``.item()``, ``.tolist()``, ``.numpy()``, ``.cpu()``, ``bool/int/float(t)``, ``t.nonzero()``):
on CUDA each would make the host wait for the GPU. torch's own internals (e.g. AdamW reading its
step counter, a CPU tensor on every device) are not our step's code. On CUDA,
``torch.cuda.set_sync_debug_mode("error")`` checks the same step for real.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
import torch

import scalegmn
from scalegmn.execution import ExecutionConfig
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.train import loop
from scalegmn.train.loop import TrainState, _start, _train_step, check_losses
from tests.train.conftest import make_splits

PACKAGE = str(Path(scalegmn.__file__).parent)
READS = ("item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__int__", "__float__", "__index__")


class HostSync(AssertionError):
    """A value read from a tensor inside the guarded code."""


@contextlib.contextmanager
def no_host_reads():
    """Raise HostSync when scalegmn code reads a tensor's value (see the module docstring)."""
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def guarded(name, original):
        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(PACKAGE):
                raise HostSync(f"{name} read at {caller}:{sys._getframe(1).f_lineno}")
            return original(self, *args, **kwargs)
        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, guarded(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def started_run(name: str, execution: ExecutionConfig, device: str = "cpu", task: str = "classification"):
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 8, "n_layers": 2, "dropout": 0.1})
    splits = make_splits(task)
    spec = splits["train"].spec
    model = build_model(config.override({"symmetry": "scale"} if config.kind == "scalegmn" else {}),
                        spec, task=task, n_outputs=4, execution=execution)
    optim = preset.optim.override({"batch_size": 16, "epochs": 2, "warmup_steps": 2})
    run = _start(model, optim, task, splits, seed=0, device=torch.device(device), execution=execution,
                 on_eval=None)
    return run, TrainState()


CASES = [
    ("mnist_cls/scalegmn", {}),
    ("mnist_cls/scalegmn_bidir", {}),
    ("mnist_cls/scalegmn_bidir", {"memory": "plain"}),
    ("mnist_cls/scalegmn", {"memory": "checkpoint", "checkpoint_chunk": 4}),
    ("mnist_cls/scalegmn_bidir", {"precision": "bf16"}),
    ("mnist_cls/scalegmn", {"micro_batch_size": 5}),
]


@pytest.mark.parametrize(("name", "execution"), CASES)
def test_training_step_reads_no_tensor_value(name, execution):
    run, state = started_run(name, ExecutionConfig().override(execution))
    _train_step(run, state)  # warm-up: one-time checks (e.g. cached flags) may read once
    with no_host_reads():
        _train_step(run, state)
        _train_step(run, state)
    assert len(run.pending) == 3  # the losses wait, unread, for the logging interval
    check_losses(run, state)
    assert state.loss_count == 3 and run.pending == []


def test_the_guard_catches_the_logging_intervals_read():
    """Control: the once-per-interval loss check does read the losses, and the guard sees it."""
    run, state = started_run("mnist_cls/scalegmn", ExecutionConfig())
    _train_step(run, state)
    with no_host_reads(), pytest.raises(HostSync, match="loop.py"):
        check_losses(run, state)


def test_a_non_finite_loss_is_caught_at_the_next_check(monkeypatch):
    run, state = started_run("mnist_cls/scalegmn", ExecutionConfig())
    _train_step(run, state)
    monkeypatch.setattr(loop, "_training_loss", lambda *a: torch.tensor(float("nan"), requires_grad=True) * 1)
    _train_step(run, state)
    _train_step(run, state)
    with pytest.raises(FloatingPointError, match=r"training loss is nan at step 2 \(checked at step 3\)"):
        check_losses(run, state)


def _second_step_without_sync(run, state) -> None:
    """One warm-up step, then a step under CUDA's sync debug mode, which raises on a host sync."""
    _train_step(run, state)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _train_step(run, state)
    finally:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.cuda
@pytest.mark.parametrize(("name", "execution"), CASES)
def test_cuda_training_step_does_not_synchronise(name, execution):
    run, state = started_run(name, ExecutionConfig().override(execution), device="cuda")
    _second_step_without_sync(run, state)
    check_losses(run, state)
    assert state.loss_count == 2


def test_splits_stay_on_the_host_without_a_gpu(tmp_path):
    from scalegmn.train.job import resident_device

    assert resident_device(torch.device("cpu"), []) == torch.device("cpu")


@pytest.mark.cuda
def test_a_gpu_resident_split_trains_without_synchronising(tmp_path):
    """Splits that fit stay on the GPU (train.job.resident_device); a step on them gathers the
    batch there, indices copied non-blocking."""
    import numpy as np

    from scalegmn.data.cache import StoreContent, load_split, write_store
    from scalegmn.train.job import resident_device

    splits = make_splits("classification")
    for name, split in splits.items():
        n = split.size
        write_store(tmp_path / f"{name}.zarr", StoreContent(
            nets=[split.net], y=split.y.numpy(), activation=np.full(n, split.spec.hidden_activation),
            source=np.array([f"n{i}" for i in range(n)]), table_row=np.arange(n)), {"n_classes": 4})
    stores = [tmp_path / f"{name}.zarr" for name in splits]
    dev = resident_device(torch.device("cuda"), stores)
    assert dev.type == "cuda"
    run, state = started_run("mnist_cls/scalegmn", ExecutionConfig(), device="cuda")
    run.splits = {name: load_split(tmp_path / f"{name}.zarr", device=dev) for name in splits}
    _second_step_without_sync(run, state)
