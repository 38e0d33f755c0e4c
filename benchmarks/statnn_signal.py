"""How much of a CNN zoo's test accuracy the per-layer weight statistics alone predict.

StatNN reads 14 statistics per layer (mean, variance, 5 quantiles of weights and of biases).
This script measures, on cached stores (`snakemake data_all` or a table run builds them), how
far those statistics go without any training budget:

- ``ridge_tau``: Kendall tau on the test split of a ridge regression on the standardised
  statistics, fitted in closed form on the train split (the alpha with the best validation tau);
- ``best_single_tau``: the largest |Kendall tau| on the test split of any one statistic, and its
  name (e.g. ``layer3.weight.var``).

A large ``ridge_tau`` says the stand-in's generalization is mostly written in per-layer
statistics, which is what StatNN reads directly and what a metanetwork must first learn to
compute within its step budget.

Usage: python benchmarks/statnn_signal.py [--cache results/cache] [VIEW ...]
Prints one JSON line per view.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau
from view_cli import run_per_view  # benchmarks/ is on sys.path when run as a script

from scalegmn.data.cache import load_split
from scalegmn.models.baselines import QUANTILES, layer_statistics
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network

VIEWS = ["cifar10_gs_relu", "svhn_gs_relu", "cifar10_gs_tanh", "svhn_gs_tanh", "cifar10_gs_both"]


def _names(n_layers: int) -> list[str]:
    stats = ["mean", "var", *(f"q{q:g}" for q in QUANTILES)]
    return [f"layer{k}.{t}.{s}" for k in range(n_layers) for t in ("weight", "bias") for s in stats]


def _features(store: Path) -> tuple[np.ndarray, np.ndarray, int]:
    split = load_split(store)
    feats = []
    for a, spec in enumerate(split.specs):
        net = Network(spec, split.weights[a], split.biases[a])
        feats.append(layer_statistics(WeightBatch(net)).double())
    x = torch.cat(feats).numpy()
    return x, split.y.double().numpy(), split.specs[0].n_layers


def view_signal(cache: Path, view: str) -> dict:
    (xtr, ytr, n_layers), (xva, yva, _), (xte, yte, _) = (
        _features(cache / view / f"{s}.zarr") for s in ("train", "val", "test")
    )
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-12
    ztr, zva, zte = ((x - mu) / sd for x in (xtr, xva, xte))
    best = None
    for alpha in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0):
        a = np.c_[ztr, np.ones(len(ztr))]
        coef = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ ytr)
        tau_val = kendalltau(yva, np.c_[zva, np.ones(len(zva))] @ coef).statistic
        if best is None or tau_val > best[0]:
            best = (tau_val, alpha, coef)
    _, alpha, coef = best
    ridge_tau = kendalltau(yte, np.c_[zte, np.ones(len(zte))] @ coef).statistic
    singles = [abs(kendalltau(yte, xte[:, j]).statistic) for j in range(xte.shape[1])]
    singles = [0.0 if np.isnan(t) else t for t in singles]
    j = int(np.argmax(singles))
    return {
        "view": view,
        "n_train": len(ytr),
        "n_test": len(yte),
        "ridge_alpha": alpha,
        "ridge_tau": round(float(ridge_tau), 4),
        "best_single_tau": round(float(singles[j]), 4),
        "best_single_statistic": _names(n_layers)[j],
    }


if __name__ == "__main__":
    sys.exit(run_per_view(__doc__.split("\n")[0], VIEWS, view_signal))
