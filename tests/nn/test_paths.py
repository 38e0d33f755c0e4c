"""Chunked activation checkpointing changes nothing; float32 runs and trains."""

from __future__ import annotations

import pytest
import torch

from scalegmn.execution import DEFAULT_EXECUTION, ExecutionConfig
from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import flatten_output, random_network


def outputs_and_grads(model, batch):
    model.zero_grad()
    out = flatten_output(model(batch))
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
    (out * weights).sum().backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
    return out.detach(), grads


def small(name, execution=DEFAULT_EXECUTION):
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 10, "n_layers": 2, "dropout": 0.0})
    model = build_model(config, preset_spec(name), task=preset.task, n_outputs=preset_outputs(preset),
                        execution=execution)
    return model.double(), config


@pytest.mark.parametrize("name", ["mnist_cls/scalegmn", "mnist_editing/scalegmn_bidir"])
def test_checkpointing_in_chunks_changes_nothing(name):
    model, _ = small(name)
    ckpt, _ = small(name, ExecutionConfig(memory="checkpoint", checkpoint_chunk=3))
    ckpt.load_state_dict(model.state_dict())
    batch = WeightBatch(random_network(preset_spec(name), (7,)))
    out_a, grad_a = outputs_and_grads(model, batch)
    out_b, grad_b = outputs_and_grads(ckpt, batch)
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(grad_b, grad_a)


def test_float32_on_the_default_device_runs_and_trains():
    model, _ = small("cifar10/scalegmn_relu")
    model = model.float()
    batch = WeightBatch(random_network(preset_spec("cifar10/scalegmn_relu"), (3,), dtype=torch.float32))
    out = model(batch)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
