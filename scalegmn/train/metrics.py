"""Evaluation metrics of the three tasks, computed over a whole split as the paper does.

- classification: mean cross-entropy and accuracy (fraction; tables print %);
- generalization: MSE of sigmoid(output) vs the CNN's test accuracy, Kendall tau-b (scipy,
  ties handled), R^2 and mean absolute error, all over the concatenated split;
- editing: per-image mean squared error over (C, H, W), averaged over images.

Selection rules (docs/model.md §3.2): classification keeps the evaluation with the best validation accuracy
compared with ``>=`` (later ties win), generalization the best validation tau with ``>=``, editing
the lowest validation MSE with ``<``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scalegmn.vocabulary import TASK_METRICS

#: task -> (metric, comparison that makes a later evaluation the selected one), from the vocabulary.
SELECTION: dict[str, tuple[str, str]] = {task: (m.name, m.selection) for task, m in TASK_METRICS.items()}


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``logits`` (N, C), ``labels`` (N,) long."""
    loss = torch.nn.functional.cross_entropy(logits.double(), labels, reduction="mean")
    acc = (logits.argmax(dim=-1) == labels).double().mean()
    return {"loss": float(loss), "accuracy": float(acc)}


def generalization_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``pred`` = sigmoid(output) (N,), ``target`` the true test accuracy (N,)."""
    from scipy.stats import kendalltau

    p = pred.detach().double().cpu().numpy().reshape(-1)
    t = target.detach().double().cpu().numpy().reshape(-1)
    err = p - t
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    tau = kendalltau(t, p).statistic if len(t) > 1 else float("nan")
    return {
        "loss": float(np.mean(err**2)),
        "kendall_tau": float(tau) if tau is not None else float("nan"),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "mae": float(np.mean(np.abs(err))),
    }


def editing_metrics(per_image_mse: torch.Tensor) -> dict[str, float]:
    """``per_image_mse`` (N,): mean over (C, H, W) of each image's squared error."""
    mse = float(per_image_mse.double().mean())
    return {"loss": mse, "mse": mse}


def is_better(task: str, value: float, best: float | None) -> bool:
    """The paper's selection rule for ``task``; NaN never wins."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    _, op = SELECTION[task]
    return value >= best if op == ">=" else value < best
