"""The ``scale`` size: the real datasets' sizes with random valid weights, nothing fitted or
trained. For throughput and memory tests of the data path only."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from scalegmn.atomic import atomic_write
from scalegmn.data.formats import cifar_inr, cnn_zoo, mnist_inr
from scalegmn.data.network_set import NetworkSetWriter
from scalegmn.data.standins.cnn_train import CHECKPOINT_EPOCHS
from scalegmn.data.standins.inr_zoos import REAL_INR_STATS, cifar_cut_points, network_at
from scalegmn.data.standins.sizes import generator_seed
from scalegmn.weightspace.network import (
    Network,
    NetworkSpec,
    cnn_zoo_spec,
    dws_siren_spec,
    nfn_siren_spec,
)

SCALE_BLOCK = 4096  # networks generated and written at once: bounded memory at any size


def _random_inrs(spec: NetworkSpec, n: int, stats: str, gen: torch.Generator) -> Network:
    """``n`` INRs with normal weights of the real zoo's per-layer std (REAL_INR_STATS)."""
    ref = REAL_INR_STATS[stats]
    return Network(spec,
                   tuple(torch.randn(n, *spec.weight_shape(i), generator=gen) * ref["weight_std"][i]
                         for i in range(spec.n_layers)),
                   tuple(torch.randn(n, *spec.bias_shape(i), generator=gen) * ref["bias_std"][i]
                         for i in range(spec.n_layers)))


def _write_mnist(root: Path, counts: dict[str, int], gen: torch.Generator) -> int:
    n_train, n_test = counts["n_train"], counts["n_test"]
    total = n_train + n_test
    for lo in range(0, total, SCALE_BLOCK):
        zoo = _random_inrs(dws_siren_spec(), min(SCALE_BLOCK, total - lo), "dws_mnist", gen)
        for j in range(int(zoo.batch_shape[0])):
            k = lo + j
            split, image_id = ("training", k) if k < n_train else ("testing", k - n_train)
            mnist_inr.write_network(root, network_at(zoo, j), split=split, label=k % 10, image_id=image_id)
    return total


def _write_cifar_inr(root: Path, counts: dict[str, int], gen: torch.Generator) -> int:
    n_images, n_aug = counts["n_images"], counts["n_aug"]
    n_train, _ = cifar_cut_points(n_images)
    jobs = [(None, n_images)] + [(a, n_train) for a in range(n_aug)]
    for aug, n in jobs:
        for lo in range(0, n, SCALE_BLOCK):
            zoo = _random_inrs(nfn_siren_spec(), min(SCALE_BLOCK, n - lo), "nfn_cifar10", gen)
            for j in range(int(zoo.batch_shape[0])):
                k = lo + j
                cifar_inr.write_network(root, network_at(zoo, j), label=k % 10, idx=k, aug=aug)
    return n_images + n_aug * n_train


def write_cnn_zoo(root: Path, counts: dict[str, int], gen: torch.Generator, *, dataset: str,
                   split_name: str) -> int:
    """weights.npy written block by block, metrics of random configurations."""
    n_ck = len(CHECKPOINT_EPOCHS)
    n = counts["n_runs"] * n_ck
    spec = cnn_zoo_spec("relu")
    # Header, then the rows block by block through a file handle: a memory map would keep the
    # whole 5.4 GB file resident (dirty pages count as RSS until written back).
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (n, cnn_zoo.N_PARAMS)}
    with atomic_write(root / cnn_zoo.WEIGHTS_FILE) as tmp, open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for lo in range(0, n, SCALE_BLOCK):
            m = min(SCALE_BLOCK, n - lo)
            net = Network(spec,
                          tuple(torch.randn(m, *spec.weight_shape(i), generator=gen)
                                / float(np.prod(spec.weight_shape(i)[1:])) ** 0.5 for i in range(spec.n_layers)),
                          tuple(torch.randn(m, *spec.bias_shape(i), generator=gen) * 0.01
                                for i in range(spec.n_layers)))
            fh.write(np.ascontiguousarray(cnn_zoo.network_to_rows(net), dtype=np.float32).tobytes())
    run = np.repeat(np.arange(counts["n_runs"]), n_ck)
    acts = np.where(torch.rand(counts["n_runs"], generator=gen).numpy() < 0.5, "relu", "tanh")
    metrics = pd.DataFrame({
        "config.activation": acts[run],
        "config.dataset": dataset,
        "step": np.tile(np.asarray(CHECKPOINT_EPOCHS), counts["n_runs"]),
        "test_accuracy": torch.rand(n, generator=gen).double().numpy(),
    })
    with atomic_write(root / cnn_zoo.LAYOUT_FILE) as tmp:
        cnn_zoo.layout_frame().to_csv(tmp, index=False)
    with atomic_write(root / cnn_zoo.METRICS_FILE) as tmp:
        metrics.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    cnn_zoo.write_split_csv(root / f"{split_name}_split.csv", torch.randperm(n, generator=gen).numpy())
    return n


SCALE_WRITERS: dict[str, Callable[[Path, dict[str, int], torch.Generator], int]] = {
    "mnist_inr": _write_mnist,
    "cifar10_inr": _write_cifar_inr,
    "cifar10_gs": partial(write_cnn_zoo, dataset="cifar10", split_name="cifar10"),
    "svhn_gs": partial(write_cnn_zoo, dataset="svhn_cropped", split_name="svhn"),
}


def write_scale_inr_table(path: str | Path, *, n_images: int, n_aug: int, seed: int = 0) -> int:
    """The ingested table (``weights.h5``) of a CIFAR-10 INR ``scale`` stand-in, written directly,
    block by block: what ingest makes of the stand-in's files (the same columns and attributes),
    without writing ``n_images + n_aug x train`` .pth files first (960k at the real size: an hour
    of file writes on 2 cores). For data-path throughput and memory tests of the cache build."""
    gen = torch.Generator().manual_seed(generator_seed("cifar10_inr", seed))
    n_train, _ = cifar_cut_points(n_images)
    spec = nfn_siren_spec()
    total = 0
    with NetworkSetWriter(path, spec) as writer:
        for aug, n in [(None, n_images)] + [(a, n_train) for a in range(n_aug)]:
            for lo in range(0, n, SCALE_BLOCK):
                m = min(SCALE_BLOCK, n - lo)
                zoo = _random_inrs(spec, m, "nfn_cifar10", gen)
                idx = np.arange(lo, lo + m)
                folders = [cifar_inr.folder_name(int(k % 10), aug) for k in idx]
                writer.append(zoo.weights, zoo.biases, {
                    "label": (idx % 10).astype(np.int64),
                    "target": np.full(m, np.nan, dtype=np.float32),
                    "source": np.array([f"{f}/net{k}.pth" for f, k in zip(folders, idx, strict=True)]),
                    "activation": np.full(m, spec.hidden_activation),
                    "idx": idx.astype(np.int64),
                    "aug": np.full(m, -1 if aug is None else aug, dtype=np.int64),
                })
                total += m
        writer.finish({}, {"aug_copies": list(range(n_aug)), "dataset": "cifar10_inr", "format": "cifar_inr",
                           "on_bad_file": "error", "quarantined": 0, "written_directly": True})
    return total


def build_scale(name: str, root: Path, counts: dict[str, int], gen: torch.Generator) -> dict[str, Any]:
    """Write the ``scale`` stand-in ``name`` into ``root``; its report's size and quality entries."""
    n = SCALE_WRITERS[name](root, counts, gen)
    return {"n_networks": n, "quality": {"random_weights": True,
                                         "note": "the real size with random valid weights: data-path throughput only"}}
