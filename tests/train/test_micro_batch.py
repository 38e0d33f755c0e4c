"""Gradient accumulation over micro-batches is the same optimizer step as the whole batch."""

import copy

import torch

from scalegmn.execution import ExecutionConfig
from scalegmn.models.catalogue import preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.train.loop import optimizer_step
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import random_network


def _step(model, batch, micro):
    model = copy.deepcopy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = optimizer_step(
        model,
        opt,
        batch,
        lambda part: torch.nn.functional.cross_entropy(model(part), part.y),
        clip_grad_norm=10.0,
        execution=ExecutionConfig(micro_batch_size=micro),
    )
    return loss, [p.grad.clone() for p in model.parameters() if p.grad is not None], model


def test_micro_batches_give_the_whole_batch_gradient_and_step():
    preset = get_preset("mnist_cls/scalegmn")
    spec = preset_spec(preset.name)
    config = preset.model.override({"n_layers": 2, "d_hid": 8, "dropout": 0.0})
    model = build_model(config, spec, task="classification", n_outputs=10).double()
    net = random_network(spec, (10,), scale=0.1, dtype=torch.float64)
    batch = WeightBatch(net, y=torch.randint(0, 10, (10,)))

    loss_full, grads_full, after_full = _step(model, batch, None)
    loss_micro, grads_micro, after_micro = _step(model, batch, 4)  # 4 + 4 + 2: uneven parts
    assert torch.allclose(loss_full, loss_micro, atol=1e-12)
    for a, b in zip(grads_full, grads_micro, strict=True):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-8)
    for a, b in zip(after_full.parameters(), after_micro.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-10)

    # Control: the comparison can fail: other labels give a different gradient.
    other = WeightBatch(net, y=(batch.y + 1) % 10)
    _, grads_other, _ = _step(model, other, 4)
    assert max((a - b).abs().max() for a, b in zip(grads_full, grads_other, strict=True)) > 1e-6
