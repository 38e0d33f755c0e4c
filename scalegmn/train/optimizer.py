"""The training loop's optimizer: AdamW with a linear warm-up, stepped on foreach kernels.

It computes what ``torch.optim.AdamW`` (betas 0.9/0.999, eps 1e-8, no amsgrad) under
``torch.optim.lr_scheduler.LambdaLR`` computes; a float64 test checks it against them step by
step. It exists for two measured costs of the small models on CPU:

- torch.optim imports ``torch._dynamo`` on its first use (its methods are wrapped to disable
  dynamo): 0.9 s per job alone, 1.6 s beside another job, and a table runs hundreds of jobs;
- on CPU torch.optim updates each parameter from Python (its foreach path is CUDA's default
  only); here every update is one foreach call over all parameters.

As in torch, a parameter whose gradient is None is left alone (no decay, no moment update) and
keeps its own step count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class WarmupAdamW:
    """AdamW whose lr is ``lr * schedule(steps taken)`` (``schedule`` maps a step count to a
    factor, e.g. :class:`scalegmn.train.loop.LinearWarmup`).

    Args:
        params: the parameters to optimize (those without ``requires_grad`` are skipped).
        lr: the base learning rate.
        weight_decay: decoupled weight decay (``p -= lr * weight_decay * p``).
        schedule: the lr factor of step ``k`` (0-based), as LambdaLR's ``lr_lambda``.
        betas, eps: Adam's.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float,
                 schedule: Callable[[int], float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.base_lr, self.weight_decay, self.schedule = float(lr), float(weight_decay), schedule
        self.beta1, self.beta2, self.eps = float(betas[0]), float(betas[1]), float(eps)
        self.steps = 0  # optimizer steps taken (the schedule's clock)
        self.param_steps = [0] * len(self.params)  # per parameter: updates it received
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @property
    def lr(self) -> float:
        """The lr of the next step."""
        return self.base_lr * self.schedule(self.steps)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (set to None: the only form the loop uses)."""
        if not set_to_none:
            raise ValueError("WarmupAdamW.zero_grad sets gradients to None only")
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update of every parameter that has a gradient; then advance the schedule."""
        lr = self.lr
        self.steps += 1
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        m = [self.exp_avg[i] for i in live]
        v = [self.exp_avg_sq[i] for i in live]
        for i in live:
            self.param_steps[i] += 1
        counts = [self.param_steps[i] for i in live]
        if self.weight_decay:
            torch._foreach_mul_(params, 1.0 - lr * self.weight_decay)
        torch._foreach_lerp_(m, grads, 1.0 - self.beta1)
        torch._foreach_mul_(v, self.beta2)
        torch._foreach_addcmul_(v, grads, grads, 1.0 - self.beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [(1.0 - self.beta2 ** t) ** 0.5 for t in counts])
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, [-lr / (1.0 - self.beta1 ** t) for t in counts])

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (tensors shared, not copied), for the resume file."""
        return {"steps": self.steps, "param_steps": list(self.param_steps),
                "exp_avg": list(self.exp_avg), "exp_avg_sq": list(self.exp_avg_sq)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (copied into this optimizer's tensors);
        ValueError if it belongs to other parameters."""
        n = len(self.params)
        moments = (state.get("exp_avg"), state.get("exp_avg_sq"))
        if any(not isinstance(x, list) or len(x) != n for x in (*moments, state.get("param_steps"))):
            raise ValueError(f"optimizer state is not one of WarmupAdamW over {n} parameters")
        for saved in moments:
            for p, t in zip(self.params, saved, strict=True):
                if not isinstance(t, torch.Tensor) or t.shape != p.shape:
                    raise ValueError("optimizer state has a moment of another shape than its parameter")
        for own, saved in zip((self.exp_avg, self.exp_avg_sq), moments, strict=True):
            for dst, src in zip(own, saved, strict=True):
                dst.copy_(src)
        self.steps = int(state["steps"])
        self.param_steps = [int(t) for t in state["param_steps"]]
