"""Cache build and load throughput, beside the per-file torch.load path of the original code.

Prints one JSON line per measurement:
- build from .pth files (MNIST-INR format): ingest (read every file once into HDF5) + cache;
- build from weights.npy (Small CNN Zoo format): ingest (blocks of rows read from the file) + cache;
- load a cached split into memory (load_split): MB/s and networks/s, for several chunk sizes;
- the original's path: one torch.load per network (what every epoch pays there).

Usage: python benchmarks/cache_throughput.py [--n-inrs 2000] [--n-runs 300] [--workdir DIR]

At the real datasets' sizes (``--scale``, the ``scale`` stand-in size: random valid weights):

    python benchmarks/cache_throughput.py --scale cifar10_inr [--fraction 0.1] [--memory-mb 1024]
    python benchmarks/cache_throughput.py --scale cifar10_gs [--fraction 0.1]

- ``cifar10_inr``: the ingested table of CIFAR-10 INRs with 20 aug copies (60k + 20 x 45k =
  960k networks; written directly by ``write_scale_inr_table``: 960k .pth files would take an
  hour here), then ``build_view_stores`` of the view with ``aug_copies: 20`` (train 945k, val,
  test) within ``--memory-mb``, then one epoch streamed from the train store
  (StreamedSplit) and, when it fits the budget, ``load_split``.
- ``cifar10_gs``: the Small CNN Zoo stand-in in its real files (weights.npy 270k x 4,970 floats,
  written block by block), ingest, build, stream.

Each stage runs in a fresh process and reports its peak RSS (``resource`` RUSAGE_SELF
high-water), seconds and networks/s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
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
from scalegmn.data.standins import scale_zoos
from scalegmn.data.standins.sizes import SIZES
from scalegmn.data.stream import StreamedSplit, store_bytes
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


def peak_rss_mb() -> float:
    """This process's RSS high-water, MB: VmHWM of its own memory map where /proc has it
    (ru_maxrss carries a parent's high-water over fork and exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(name: str, work: Path, fraction: float, memory_mb: float) -> dict:
    """One stage of the scale run, in this (fresh) process."""
    t0 = time.perf_counter()
    rec: dict = {"what": f"scale_{name}", "fraction": fraction}
    if name == "write_inr_table":
        counts = SIZES["scale"]["cifar10_inr"]
        n = scale_zoos.write_scale_inr_table(work / "cifar.h5", n_images=int(counts["n_images"] * fraction),
                                       n_aug=counts["n_aug"])
        make_splits_file(work / "cifar.h5", work / "cifar.json")
        rec["networks"] = n
    elif name == "write_zoo_files":
        counts = dict(SIZES["scale"]["cifar10_gs"])
        counts["n_runs"] = int(counts["n_runs"] * fraction)
        (work / "zoo").mkdir(parents=True, exist_ok=True)
        rec["networks"] = scale_zoos.write_cnn_zoo(work / "zoo", counts, torch.Generator().manual_seed(0),
                                              dataset="cifar10", split_name="cifar10")
    elif name == "ingest_zoo":
        rec["networks"] = ingest_dataset(work / "zoo", work / "zoo.h5", work / "zoo.tsv", dataset="cifar10_gs",
                                         fmt="cnn_zoo")["n_networks"]
        make_splits_file(work / "zoo.h5", work / "zoo.json")
    elif name in ("build_inr", "build_zoo"):
        key, view = (("cifar", {"name": "cifar10_aug", "dataset": "cifar10_inr", "aug_copies": 20})
                     if name == "build_inr" else ("zoo", {"name": "zoo", "dataset": "cifar10_gs", "activation": "both"}))
        outs = {s: work / f"{key}_{s}.zarr" for s in ("train", "val", "test")}
        attrs = build_view_stores(work / f"{key}.h5", work / f"{key}.json", outs, view=view, provenance={},
                                  memory_mb=memory_mb)
        rec["networks"] = sum(int(zarr_size(p)) for p in outs.values())
        rec["memory_mb_setting"] = memory_mb
        rec["counts"] = {s: a["counts"] for s, a in attrs.items()}
    elif name in ("stream_inr", "stream_zoo"):
        path = work / f"{'cifar' if name == 'stream_inr' else 'zoo'}_train.zarr"
        split = StreamedSplit(path)
        n = 0
        for batch in split.batches(128, shuffle=True, generator=torch.Generator().manual_seed(0)):
            n += batch.size
        rec["networks"] = n
        rec["store_mb"] = round(store_bytes(path) / 2**20, 1)
    elif name in ("load_inr", "load_zoo"):
        path = work / f"{'cifar' if name == 'load_inr' else 'zoo'}_train.zarr"
        rec["networks"] = load_split(path).size
        rec["store_mb"] = round(store_bytes(path) / 2**20, 1)
    seconds = time.perf_counter() - t0
    rec.update(seconds=round(seconds, 2), networks_per_s=round(rec["networks"] / seconds, 1),
               peak_rss_mb=round(peak_rss_mb(), 1))
    return rec


def zarr_size(path: Path) -> int:
    import zarr

    return int(zarr.open_group(path, mode="r").attrs["n_networks"])


def scale(args) -> int:
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cache_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    names = (["write_inr_table", "build_inr", "stream_inr", "load_inr"] if args.scale == "cifar10_inr"
             else ["write_zoo_files", "ingest_zoo", "build_zoo", "stream_zoo", "load_zoo"])
    for name in names:
        if name.startswith("load") and store_bytes(work / ("cifar_train.zarr" if "inr" in name else "zoo_train.zarr")) \
                / 2**20 > args.memory_mb:
            emit(what=f"scale_{name}", skipped="the train store is larger than --memory-mb: streamed only")
            continue
        proc = subprocess.run([sys.executable, __file__, "--stage", name, "--workdir", str(work),
                               "--fraction", str(args.fraction), "--memory-mb", str(args.memory_mb)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-3000:])
            return proc.returncode
        print(proc.stdout.strip().splitlines()[-1], flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-inrs", type=int, default=2000)
    parser.add_argument("--n-runs", type=int, default=300, help="zoo runs (9 checkpoints each)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--scale", choices=["cifar10_inr", "cifar10_gs"], default=None,
                        help="measure at the real dataset's size (the scale stand-in); see the docstring")
    parser.add_argument("--fraction", type=float, default=1.0, help="with --scale: this fraction of the real size")
    parser.add_argument("--memory-mb", type=float, default=1024.0, help="build_view_stores's memory budget")
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        torch.set_num_threads(1)
        emit(**stage(args.stage, args.workdir, args.fraction, args.memory_mb))
        return 0
    if args.scale:
        return scale(args)
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
