"""The Small CNN Zoo stand-ins (CIFAR-10-GS, SVHN-GS): relu and tanh CNNs with the real zoo's
hyperparameter distributions, 9 checkpoints per run, in the real files (``weights.npy``,
``metrics.csv.gz``, ``layout.csv``) with NFN's split CSV (and its stray ``0`` line)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from scalegmn.data.formats import cnn_zoo
from scalegmn.data.standins import images as img
from scalegmn.data.standins.cnn_reference import reference_comparison
from scalegmn.data.standins.cnn_train import (
    BATCH_SIZE,
    CHECKPOINT_EPOCHS,
    sample_run_configs,
    train_cnn_zoo,
)
from scalegmn.weightspace.network import Network


def _quantiles(values: torch.Tensor) -> dict[str, float]:
    q = torch.quantile(
        values.double(), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    )
    return {
        k: round(float(v), 4)
        for k, v in zip(("min", "q25", "median", "q75", "max"), q, strict=True)
    }


def _build_cnn_zoo(
    root: Path,
    counts: dict[str, int],
    gen: torch.Generator,
    *,
    kind: str,
    dataset: str,
    split_name: str,
) -> dict[str, Any]:
    n_runs = counts["n_runs"]
    train_x, train_y = img.zoo_images(kind, counts["n_pool"], gen)
    test_x, test_y = img.zoo_images(kind, counts["n_test_images"], gen)
    configs = sample_run_configs(n_runs, gen)
    ck = train_cnn_zoo(
        configs,
        train_x,
        train_y,
        test_x,
        test_y,
        train_steps=counts["train_steps"],
        gen=gen,
        label=dataset,
    )
    n_ck = len(CHECKPOINT_EPOCHS)
    # weight rows only depend on the layout, not on the activation
    batch = Network(ck.spec_by_run[0], ck.weights, ck.biases)
    rows = cnn_zoo.network_to_rows(batch).reshape(n_runs * n_ck, -1)
    if not np.isfinite(rows).all():
        raise RuntimeError(
            f"{dataset}: a CNN run diverged to NaN/Inf; lower the learning-rate range"
        )
    run = np.repeat(np.arange(n_runs), n_ck)  # rows are run-major, like the real zoo

    def per_run(values: torch.Tensor) -> np.ndarray:
        return values.double().numpy()[run]

    metrics = pd.DataFrame(
        {
            "config.activation": np.asarray(configs.activation, dtype=object)[run],
            "config.b_init": "zeros",
            "config.dataset": dataset,
            "config.dnn_architecture": "cnn",
            "config.dropout": per_run(configs.dropout),
            "config.epochs": CHECKPOINT_EPOCHS[-1],
            "config.epochs_between_checkpoints": 20,
            "config.init_std": per_run(configs.init_std),
            "config.l2reg": per_run(configs.l2reg),
            "config.learning_rate": per_run(configs.learning_rate),
            "config.num_layers": 3,
            "config.num_units": 16,
            "config.optimizer": np.asarray(configs.optimizer, dtype=object)[run],
            "config.random_seed": run,  # the run index (all runs draw from one seeded stream)
            "config.train_fraction": per_run(configs.train_fraction),
            "config.w_init": np.asarray(configs.w_init, dtype=object)[run],
            "modeldir": [f"standin/{dataset}/run{r:05d}" for r in run],
            "step": np.tile(np.asarray(CHECKPOINT_EPOCHS), n_runs),
            "test_accuracy": ck.test_accuracy.double().numpy().reshape(-1),
            "test_loss": ck.test_loss.double().numpy().reshape(-1),
            "train_accuracy": ck.train_accuracy.double().numpy().reshape(-1),
            "train_loss": ck.train_loss.double().numpy().reshape(-1),
        }
    )
    cnn_zoo.write_zoo(root, rows, metrics)
    perm = torch.randperm(len(rows), generator=gen).numpy()
    cnn_zoo.write_split_csv(root / f"{split_name}_split.csv", perm)
    final = ck.test_accuracy[:, -1]
    is_tanh = torch.tensor([a == "tanh" for a in configs.activation])
    quality: dict[str, Any] = {"test_accuracy_final": _quantiles(final)}
    for activation, sel in (("relu", ~is_tanh), ("tanh", is_tanh)):
        if sel.any():
            quality[f"test_accuracy_final_{activation}"] = _quantiles(final[sel])
    quality["batch_size"] = BATCH_SIZE
    # the real zoo's hyperparameter distributions and accuracies next to this stand-in's

    comparison = reference_comparison(
        dataset,
        configs.as_columns(),
        final,
        notes=(
            f"{counts['train_steps']} optimizer steps of batch {BATCH_SIZE} stand for 86 epochs",
            f"synthetic {kind} images: {counts['n_pool']} train, "
            f"{counts['n_test_images']} test",
            "elementwise dropout after each conv (the real layer placement is [unk])",
            "w_init Constant is not drawn (its value is not recorded)",
            "with the real ranges and this short budget, many runs stay near chance",
        ),
    )
    return {
        "n_networks": len(rows),
        "n_runs": n_runs,
        "quality": quality,
        "reference_comparison": comparison,
    }


#: The builders of this module, by stand-in name. dataset = config.dataset of the real zoo;
#: split_name = <root>/<split_name>_split.csv
BUILDERS: dict[str, Callable[[Path, dict[str, int], torch.Generator], dict[str, Any]]] = {
    "cifar10_gs": partial(_build_cnn_zoo, kind="cifar10", dataset="cifar10", split_name="cifar10"),
    "svhn_gs": partial(_build_cnn_zoo, kind="svhn", dataset="svhn_cropped", split_name="svhn"),
}
