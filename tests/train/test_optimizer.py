"""WarmupAdamW is torch.optim.AdamW under LambdaLR, without torch._dynamo."""

import copy
import subprocess
import sys

import pytest
import torch

from scalegmn.train.loop import LinearWarmup
from scalegmn.train.optimizer import WarmupAdamW


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3),
                               torch.nn.Linear(3, 2)).double()


def _train(model, optimizer, schedule_step, steps: int, *, skip_last_at: int | None = None):
    """``steps`` steps on fixed data; the last Linear gets no gradient at step ``skip_last_at``
    (its grad None, as for a parameter a task does not use)."""
    g = torch.Generator().manual_seed(1)
    for k in range(steps):
        x, y = torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        if k == skip_last_at:
            for p in model[3].parameters():
                p.grad = None
        optimizer.step()
        schedule_step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _reference(model, *, lr, wd, warmup, steps, **kw):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LinearWarmup(warmup))
    return _train(model, opt, sched.step, steps, **kw)


def _ours(model, *, lr, wd, warmup, steps, **kw):
    opt = WarmupAdamW(model.parameters(), lr=lr, weight_decay=wd, schedule=LinearWarmup(warmup))
    return _train(model, opt, lambda: None, steps, **kw), opt


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_warmup_adamw_is_torch_adamw_under_lambda_lr(wd) -> None:
    base = _model()
    ref = _reference(copy.deepcopy(base), lr=3e-2, wd=wd, warmup=4, steps=12, skip_last_at=2)
    ours, opt = _ours(copy.deepcopy(base), lr=3e-2, wd=wd, warmup=4, steps=12, skip_last_at=2)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12), (ours - ref).abs().max()
    assert opt.steps == 12 and opt.param_steps == [12, 12, 12, 12, 11, 11]
    assert opt.lr == 3e-2  # past the warm-up
    # Controls: another warm-up, or no skipped gradient, moves the parameters.
    other, _ = _ours(copy.deepcopy(base), lr=3e-2, wd=wd, warmup=8, steps=12, skip_last_at=2)
    unskipped, _ = _ours(copy.deepcopy(base), lr=3e-2, wd=wd, warmup=4, steps=12)
    assert (other - ref).abs().max() > 1e-4 and (unskipped - ref).abs().max() > 1e-4


def _continue(model, optimizer, *, done: int, steps: int) -> torch.Tensor:
    """``steps`` more steps of :func:`_train`'s data stream, after its first ``done``."""
    g = torch.Generator().manual_seed(1)
    for k in range(done + steps):
        x, y = torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)
        if k < done:
            continue
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_state_dict_round_trip_continues_identically() -> None:
    base = _model()
    straight, _ = _ours(copy.deepcopy(base), lr=1e-2, wd=1e-2, warmup=3, steps=10)
    model = copy.deepcopy(base)
    _, first = _ours(model, lr=1e-2, wd=1e-2, warmup=3, steps=6)
    resumed = WarmupAdamW(model.parameters(), lr=1e-2, weight_decay=1e-2, schedule=LinearWarmup(3))
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    assert torch.equal(_continue(model, resumed, done=6, steps=4), straight)
    # Control: a fresh optimizer (zero moments, step 0) on the same parameters ends elsewhere.
    model = copy.deepcopy(base)
    _ours(model, lr=1e-2, wd=1e-2, warmup=3, steps=6)
    fresh = WarmupAdamW(model.parameters(), lr=1e-2, weight_decay=1e-2, schedule=LinearWarmup(3))
    assert not torch.equal(_continue(model, fresh, done=6, steps=4), straight)


def test_load_state_dict_refuses_another_models_state() -> None:
    opt = WarmupAdamW(_model().parameters(), lr=1e-2, weight_decay=0.0, schedule=LinearWarmup(1))
    small = WarmupAdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-2, weight_decay=0.0, schedule=LinearWarmup(1))
    with pytest.raises(ValueError, match="6 parameters"):
        opt.load_state_dict(small.state_dict())
    with pytest.raises(ValueError, match="6 parameters"):
        opt.load_state_dict({"state": {}, "param_groups": []})  # a torch.optim state dict


def test_training_step_does_not_import_dynamo() -> None:
    """The point of the class: a training job never pays torch._dynamo's import."""
    code = (
        "import sys, torch\n"
        "from scalegmn.train.loop import LinearWarmup, optimizer_step\n"
        "from scalegmn.train.optimizer import WarmupAdamW\n"
        "m = torch.nn.Linear(3, 1)\n"
        "opt = WarmupAdamW(m.parameters(), lr=1e-2, weight_decay=1e-2, schedule=LinearWarmup(2))\n"
        "class Batch: size, x = 4, torch.randn(4, 3)\n"
        "optimizer_step(m, opt, Batch, lambda b: m(b.x).pow(2).mean(), clip_grad_norm=1.0)\n"
        "print('torch._dynamo' in sys.modules)\n"
        "torch.optim.AdamW(m.parameters()).step()\n"
        "print('torch._dynamo' in sys.modules)\n"  # control: torch.optim does import it
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
