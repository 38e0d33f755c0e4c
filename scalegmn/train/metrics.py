"""Evaluation metrics of the tasks, computed over a whole split as the paper does.

- classification: mean cross-entropy and accuracy (fraction; tables print %);
- generalization: MSE of sigmoid(output) vs the CNN's test accuracy, Kendall tau-b (scipy,
  ties handled), R^2 and mean absolute error, all over the concatenated split;
- editing: per-image mean squared error over (C, H, W), averaged over images;
- embedding: retrieval Recall@k and MRR (:func:`retrieval_metrics`) and, on the CNN zoos, a ridge
  probe from the embeddings to the test accuracy (:func:`ridge_probe`: R^2, MSE, Spearman).

Selection rules (docs/model.md §3.2): classification keeps the evaluation with the best validation accuracy
compared with ``>=`` (later ties win), generalization the best validation tau with ``>=``, editing
the lowest validation MSE with ``<``, embedding the best validation Recall@1 with ``>=``.
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


def retrieval_metrics(scores: torch.Tensor, relevant: torch.Tensor, *, exclude: torch.Tensor | None = None,
                      ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k and MRR of ``Q`` queries over ``G`` gallery items.

    Args:
        scores: ``(Q, G)`` similarities, higher is closer.
        relevant: ``(Q, G)`` bool, the items each query should find.
        exclude: ``(Q, G)`` bool, items not ranked at all (a query's own row when the gallery is
            the query set).
        ks: the cut-offs of ``recall_at_<k>``.

    The rank of a query is 1 + the number of irrelevant items scoring at least as high as its
    best relevant item: ties count against the query, so a collapsed encoder (every score equal)
    ranks last, not first. Recall@k is the fraction of queries ranked <= k (at least one
    relevant item in the top k), MRR the mean of 1 / rank. Queries without a relevant item are
    left out; with none left every value is NaN.
    """
    scores = scores.double()
    relevant = relevant.bool()
    if exclude is not None:
        relevant = relevant & ~exclude
    keep = relevant.any(dim=1)
    best = torch.where(relevant, scores, torch.tensor(-math.inf, dtype=scores.dtype)).amax(dim=1, keepdim=True)
    competing = ~relevant if exclude is None else ~relevant & ~exclude
    rank = 1 + (competing & (scores >= best)).sum(dim=1)
    rank = rank[keep].double()
    if rank.numel() == 0:
        return {**{f"recall_at_{k}": math.nan for k in ks}, "mrr": math.nan}
    out = {f"recall_at_{k}": float((rank <= k).double().mean()) for k in ks}
    out["mrr"] = float((1.0 / rank).mean())
    return out


RIDGE_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - my))
    return w, float(my - mx @ w)


def ridge_probe(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                test: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """A linear probe: ridge regression from embeddings to a target (the CNN's test accuracy).

    Fitted on ``train`` (embeddings ``(N, d)``, targets ``(N,)``) for each alpha of
    :data:`RIDGE_ALPHAS` (intercept not penalised); the alpha with the lowest validation MSE is
    kept and scored on ``test``: ``probe_r2``, ``probe_mse``, ``probe_spearman``, ``probe_alpha``.
    """
    from scipy.stats import spearmanr

    (xt, yt), (xv, yv), (xs, ys) = ((np.asarray(x, np.float64), np.asarray(y, np.float64)) for x, y in (train, val, test))
    best = None
    for alpha in RIDGE_ALPHAS:
        w, b = _ridge_fit(xt, yt, alpha)
        mse = float(np.mean((xv @ w + b - yv) ** 2))
        if best is None or mse < best[0]:
            best = (mse, alpha, w, b)
    _, alpha, w, b = best
    pred = xs @ w + b
    ss_tot = float(np.sum((ys - ys.mean()) ** 2))
    rho = spearmanr(ys, pred).statistic if len(ys) > 1 else float("nan")
    return {
        "probe_r2": 1.0 - float(np.sum((pred - ys) ** 2)) / ss_tot if ss_tot > 0 else float("nan"),
        "probe_mse": float(np.mean((pred - ys) ** 2)),
        "probe_spearman": float(rho),
        "probe_alpha": alpha,
    }
