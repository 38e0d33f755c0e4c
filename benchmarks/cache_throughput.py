"""Cache build and load throughput, beside the per-file torch.load path of the original code.

Prints one JSON line per measurement:
- build from .pth files (MNIST-INR format): ingest (read every file once into HDF5) + cache;
- build from weights.npy (Small CNN Zoo format): ingest (memory-mapped blocks) + cache;
- load a cached split into memory (load_split): MB/s and networks/s, for several chunk sizes;
- the original's path: one torch.load per network (what every epoch pays there).

Usage: python benchmarks/cache_throughput.py [--n-inrs 2000] [--n-runs 300] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from scalegmn.data import cache
from scalegmn.data.cache import build_cache, build_view_stores, load_split
from scalegmn.data.formats import cnn_zoo, mnist_inr
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.splits import make_splits_file
from scalegmn.weightspace.network import Network, cnn_zoo_spec, dws_siren_spec, unstack


def emit(**record) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)


def random_batch(spec, n: int, seed: int) -> Network:
    g = torch.Generator().manual_seed(seed)
    return Network(spec, tuple(torch.randn(n, *spec.weight_shape(i), generator=g) * 0.1 for i in range(spec.n_layers)),
                   tuple(torch.randn(n, *spec.bias_shape(i), generator=g) * 0.01 for i in range(spec.n_layers)))


def build(root: Path, work: Path, name: str, fmt: str, view: dict) -> tuple[float, int]:
    t0 = time.perf_counter()
    table = ingest_dataset(root, work / f"{name}.h5", work / f"{name}.tsv", dataset=name, fmt=fmt)
    make_splits_file(work / f"{name}.h5", work / f"{name}.json")
    build_view_stores(work / f"{name}.h5", work / f"{name}.json",  # as the pipeline: one table read
                      {split: work / f"{name}_{split}.zarr" for split in ("train", "val", "test")},
                      view=view, provenance={})
    return time.perf_counter() - t0, table["n_networks"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-inrs", type=int, default=2000)
    parser.add_argument("--n-runs", type=int, default=300, help="zoo runs (9 checkpoints each)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cache_bench_"))
    work.mkdir(parents=True, exist_ok=True)

    # MNIST-INR .pth files
    root = work / "mnist-inrs"
    files = []
    for i, net in enumerate(unstack(random_batch(dws_siren_spec(), args.n_inrs, 0))):
        split = "training" if i < args.n_inrs * 6 // 7 else "testing"
        files.append(mnist_inr.write_network(root, net, split=split, label=i % 10, image_id=i))
    seconds, n = build(root, work, "mnist", "mnist_inr", {"name": "mnist"})
    emit(what="build_from_pth", networks=n, seconds=round(seconds, 3), networks_per_s=round(n / seconds, 1))

    t0 = time.perf_counter()
    for f in files:
        torch.load(f, map_location="cpu", weights_only=True)
    dt = time.perf_counter() - t0
    emit(what="per_file_torch_load_epoch", networks=len(files), seconds=round(dt, 3),
         networks_per_s=round(len(files) / dt, 1), note="the original reads every file again every epoch")

    # Small CNN Zoo weights.npy
    zoo = work / "cifar10"
    steps = [0, 1, 2, 3, 20, 40, 60, 80, 86]
    rows = cnn_zoo.network_to_rows(random_batch(cnn_zoo_spec("relu"), args.n_runs * len(steps), 1))
    metrics = pd.DataFrame({"step": steps * args.n_runs,
                            "test_accuracy": np.random.default_rng(0).random(len(rows)),
                            "config.activation": np.repeat(["relu", "tanh"] * (args.n_runs // 2 + 1), 9)[: len(rows)]})
    cnn_zoo.write_zoo(zoo, rows.astype(np.float32), metrics)
    cnn_zoo.write_split_csv(zoo / "cifar10_split.csv", np.random.default_rng(0).permutation(len(rows)))
    seconds, n = build(zoo, work, "zoo", "cnn_zoo", {"name": "zoo", "activation": "both"})
    emit(what="build_from_weights_npy", networks=n, rows_in_file=len(rows), seconds=round(seconds, 3),
         networks_per_s=round(n / seconds, 1))

    # Loading a split, for several chunk sizes (rebuilt with each).
    for chunk in (16, 64, 256):
        cache.CHUNK_NETWORKS = chunk
        for name, view in (("mnist", {"name": "mnist"}), ("zoo", {"name": "zoo", "activation": "both"})):
            out = work / f"{name}_c{chunk}.zarr"
            build_cache(work / f"{name}.h5", work / f"{name}.json", out, view=view, split="train", provenance={})
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                split = load_split(out)
                best = min(best, time.perf_counter() - t0)
            mb = sum(t.numel() * 4 for w in split.weights for t in w) / 1e6 + \
                sum(t.numel() * 4 for b in split.biases for t in b) / 1e6
            emit(what="load_split", dataset=name, chunk_networks=chunk, networks=split.size, mb=round(mb, 2),
                 seconds=round(best, 4), mb_per_s=round(mb / best, 1), networks_per_s=round(split.size / best, 1))
    cache.CHUNK_NETWORKS = 64
    return 0


if __name__ == "__main__":
    sys.exit(main())
