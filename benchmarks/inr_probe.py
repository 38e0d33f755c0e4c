"""Where an INR zoo's class information sits: in the function, or in per-layer statistics.

For each INR classification view, two logistic-regression probes are fitted on the train split
and scored on the test split (no metanetwork involved):

- ``render_accuracy``: on the INR's rendered image (pixels at the dataset's resolution): how
  much of the label the function carries;
- ``stats_accuracy``: on per-layer statistics of the weights and biases (mean, std, mean |x|,
  5 quantiles): how much a model could get without reading the function.

A zoo where ``render_accuracy`` is high and ``stats_accuracy`` is near chance can only be
classified by a model that effectively evaluates the networks it reads.

Usage: python benchmarks/inr_probe.py [--cache results/cache] [VIEW ...]
Prints one JSON line per view.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from view_cli import run_per_view  # benchmarks/ is on sys.path when run as a script

from scalegmn.data.cache import load_split
from scalegmn.weightspace.functional import render
from scalegmn.weightspace.network import Network

VIEWS = ["mnist", "fmnist", "cifar10"]


def _features(store: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    split = load_split(store)
    net = Network(split.spec, split.weights[0], split.biases[0])
    if kind == "render":
        size = (32, 32) if split.spec.layout[-1] == 3 else (28, 28)
        return render(net, size).flatten(1).double().numpy(), split.y.numpy()
    feats = []
    levels = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    for t in (*net.weights, *net.biases):
        x = t.flatten(1).double()
        feats += [x.mean(1, keepdim=True), x.std(1, correction=0, keepdim=True),
                  x.abs().mean(1, keepdim=True), torch.quantile(x, levels, dim=1).T]
    return torch.cat(feats, 1).numpy(), split.y.numpy()


def probe(cache: Path, view: str) -> dict:
    out = {"view": view}
    for kind in ("render", "stats"):
        xtr, ytr = _features(cache / view / "train.zarr", kind)
        xte, yte = _features(cache / view / "test.zarr", kind)
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-8
        clf = LogisticRegression(max_iter=2000).fit((xtr - mu) / sd, ytr)
        out[f"{kind}_accuracy"] = round(float(clf.score((xte - mu) / sd, yte)), 4)
    out["n_train"], out["n_test"], out["chance"] = len(ytr), len(yte), round(1 / len(set(ytr)), 4)
    return out


if __name__ == "__main__":
    sys.exit(run_per_view(__doc__.split("\n")[0], VIEWS, probe))
