"""What is known about the real Small CNN Zoo, and how a CNN stand-in compares with it.

Sources (facts only, no code copied):

- [paper] Unterthiner, Keysers, Gelly, Bousquet, Tolstikhin, "Predicting Neural Network
  Accuracy from Weights", arXiv:2002.11448 (2020), Sec. 3: the per-run hyperparameter
  distributions below (docs/datasets.md does not list them; not re-checked against the paper's PDF
  in this repository, which has no copy of it).
- [docs/datasets.md §4] the project's dataset reference, §4.2 and §4.4: 86 epochs, checkpoints
  at epochs 0, 1, 2, 3, 20, 40, 60, 80, 86, train fraction in {0.1, 0.25, 0.5, 1.0}, activations
  ``relu`` / ``tanh`` (lowercase, compared with ``==`` by ScaleGMN), the ``config.*`` columns.
- The final test-accuracy distributions of CIFAR10-GS and SVHN-GS are not in docs/datasets.md, so
  they are recorded as ``"unknown"`` (the paper only shows them as histograms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

#: Quantile levels of every summary: min, q25, median, q75, max.
QUANTILE_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
_QUANTILE_NAMES = ("min", "q25", "median", "q75", "max")

#: Per-run hyperparameters of the real zoo. ``column`` is the metrics.csv.gz column.
#: Continuous: ``distribution`` "log-uniform" / "uniform" on ``[low, high]``.
#: Categorical: the ``choices`` (the paper gives no probabilities; drawn uniformly is assumed).
REAL_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    # [paper] Sec. 3
    "learning_rate": {
        "column": "config.learning_rate",
        "distribution": "log-uniform",
        "low": 5e-4,
        "high": 5e-2,
        "source": "paper Sec. 3",
    },
    # [paper] Sec. 3 (Keras kernel L2 regularization coefficient)
    "l2reg": {
        "column": "config.l2reg",
        "distribution": "log-uniform",
        "low": 1e-8,
        "high": 1e-2,
        "source": "paper Sec. 3",
    },
    # [paper] Sec. 3
    "dropout": {
        "column": "config.dropout",
        "distribution": "uniform",
        "low": 0.0,
        "high": 0.7,
        "source": "paper Sec. 3",
    },
    # [paper] Sec. 3 (used by the RandomNormal / TruncatedNormal initializers only)
    "init_std": {
        "column": "config.init_std",
        "distribution": "log-uniform",
        "low": 1e-3,
        "high": 0.5,
        "source": "paper Sec. 3",
    },
    # [docs/datasets.md §4.4] and [paper] Sec. 3
    "train_fraction": {
        "column": "config.train_fraction",
        "choices": [0.1, 0.25, 0.5, 1.0],
        "source": "docs/datasets.md §4.4; paper Sec. 3",
    },
    # [docs/datasets.md §4.4] (lowercase strings) and [paper] Sec. 3
    "activation": {
        "column": "config.activation",
        "choices": ["relu", "tanh"],
        "source": "docs/datasets.md §4.4; paper Sec. 3",
    },
    # [paper] Sec. 3; the strings in config.optimizer are [unk] (lowercase Keras names assumed)
    "optimizer": {
        "column": "config.optimizer",
        "choices": ["adam", "rmsprop", "sgd"],
        "source": "paper Sec. 3",
    },
    # [paper] Sec. 3 (Keras initializer names); the exact strings in config.w_init are [unk]
    "w_init": {
        "column": "config.w_init",
        "choices": [
            "Constant",
            "RandomNormal",
            "TruncatedNormal",
            "Orthogonal",
            "GlorotNormal",
            "GlorotUniform",
        ],
        "source": "paper Sec. 3 (list may be incomplete)",
    },
}

#: Training schedule of the real zoo [docs/datasets.md §4.2, §4.4].
REAL_SCHEDULE: dict[str, Any] = {
    "epochs": 86,
    "checkpoint_epochs": [0, 1, 2, 3, 20, 40, 60, 80, 86],
    "runs": {"cifar10": 30000, "svhn_cropped": 29988},
    "source": "docs/datasets.md §4.2",
}

#: Final (epoch 86) test accuracy of the real zoos: not in docs/datasets.md.
REAL_FINAL_TEST_ACCURACY: dict[str, Any] = {"cifar10": "unknown", "svhn_cropped": "unknown"}


def quantiles(values: torch.Tensor | Sequence[float]) -> dict[str, float]:
    """The min / q25 / median / q75 / max of ``values``, rounded to 4 significant digits."""
    v = torch.as_tensor(values, dtype=torch.float64)
    q = torch.quantile(v, torch.tensor(QUANTILE_LEVELS, dtype=torch.float64))
    return {k: float(f"{float(x):.4g}") for k, x in zip(_QUANTILE_NAMES, q, strict=True)}


def reference_quantiles(name: str) -> dict[str, float]:
    """Quantiles of a continuous real distribution (exact, from its inverse CDF)."""
    ref = REAL_HYPERPARAMETERS[name]
    lo, hi = ref["low"], ref["high"]
    if ref["distribution"] == "log-uniform":
        values = [
            math.exp(math.log(lo) + q * (math.log(hi) - math.log(lo))) for q in QUANTILE_LEVELS
        ]
    else:
        values = [lo + q * (hi - lo) for q in QUANTILE_LEVELS]
    return {k: float(f"{x:.4g}") for k, x in zip(_QUANTILE_NAMES, values, strict=True)}


def _frequencies(values: Sequence[Any]) -> dict[str, float]:
    n = len(values)
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return {k: round(c / n, 4) for k, c in sorted(counts.items())}


def reference_comparison(
    dataset: str,
    hyperparameters: dict[str, torch.Tensor | Sequence[Any]],
    final_test_accuracy: torch.Tensor,
    *,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The stand-in's per-run hyperparameters and final accuracies next to the real zoo's.

    Args:
        dataset: ``config.dataset`` of the zoo (``"cifar10"`` or ``"svhn_cropped"``).
        hyperparameters: per-run values by the names of :data:`REAL_HYPERPARAMETERS`
            (tensors for continuous ones, sequences of strings/floats for categorical ones).
        final_test_accuracy: ``(R,)`` test accuracy at the last checkpoint.
        notes: how the stand-in's training differs from the real zoo's.

    Returns:
        A JSON-ready dict: per hyperparameter the stand-in's quantiles (continuous) or choice
        frequencies (categorical) next to the real distribution, and the final test accuracy.
    """
    table: dict[str, Any] = {}
    for name, ref in REAL_HYPERPARAMETERS.items():
        real = {k: v for k, v in ref.items() if k != "column"}
        entry: dict[str, Any] = {"column": ref["column"], "real": real}
        if name in hyperparameters:
            values = hyperparameters[name]
            if "choices" in ref:
                as_list = values.tolist() if isinstance(values, torch.Tensor) else list(values)
                entry["standin_frequencies"] = _frequencies(as_list)
            else:
                entry["standin"] = quantiles(values)
                entry["real"]["quantiles"] = reference_quantiles(name)
        else:
            entry["standin"] = "not varied"
        table[name] = entry
    return {
        "source": "Unterthiner et al. 2020 (arXiv:2002.11448) Sec. 3; docs/datasets.md §4",
        "hyperparameters": table,
        "schedule": {"real": REAL_SCHEDULE},
        "final_test_accuracy": {
            "standin": quantiles(final_test_accuracy),
            # chance is 0.1: the share of runs that learned something
            "standin_share_above_0.2": round(float((final_test_accuracy > 0.2).double().mean()), 4),
            "real": REAL_FINAL_TEST_ACCURACY.get(dataset, "unknown"),
        },
        "differences": list(notes),
    }
