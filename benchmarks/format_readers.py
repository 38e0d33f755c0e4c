"""Throughput of the weight-zoo format readers and writers (scalegmn.data.formats).

Builds synthetic zoos in a temporary directory with the package's own writers, then prints one
JSON line per measurement:

- mnist_inr.write_network: .pth files written per second (one folder + one torch.save each);
- mnist_inr.list_files: globbing the zoo root;
- mnist_inr.read_network: networks/s and MB/s (tensor payload and bytes on disk), next to a
  bare ``torch.load`` of the same files, so the cost of the checks is visible;
- cnn_zoo.write_zoo: weights.npy + layout.csv + metrics.csv.gz;
- cnn_zoo.open_weights: memory-map weights.npy and check it against layout and metrics;
- cnn_zoo.rows_to_network / cnn_zoo.network_to_rows: rows/s over the whole file, in chunks.

Each measurement is warmed up once; cheap ones report the median of ``--repeats`` runs
(``seconds``) and every run (``runs_s``); the two bulk writes are timed once. Reads hit the page cache (the files were just
written), so they measure the readers' CPU cost, not the disk.

Usage: python benchmarks/format_readers.py [--n-files 2000] [--n-rows 20000] [--repeats 3]
       [--chunk 1024] [--threads N] [--tmpdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from scalegmn.data.formats import cnn_zoo, mnist_inr
from scalegmn.weightspace.network import Network, dws_siren_spec, unstack

MB = 1e6


def machine() -> dict:
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def emit(benchmark: str, n: int, runs: list[float], **rates: float | int | str | bool) -> None:
    """One JSON line; ``seconds`` is the median run, ``*_per_s`` rates are computed from it."""
    record = {
        "benchmark": benchmark,
        "n": n,
        "seconds": round(statistics.median(runs), 4),
        "runs_s": [round(r, 4) for r in runs],
        **rates,
        "machine": machine(),
    }
    print(json.dumps(record), flush=True)


def timed_runs(fn: Callable[[], object], repeats: int, *, warmup: bool = True) -> list[float]:
    if warmup:
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


def per_s(amount: float, runs: list[float]) -> float:
    return round(amount / statistics.median(runs), 1)


def random_sirens(n: int, seed: int) -> list[Network]:
    spec = dws_siren_spec()
    g = torch.Generator().manual_seed(seed)
    batch = Network(
        spec,
        tuple(
            torch.randn(n, *spec.weight_shape(i), generator=g) * 0.1 for i in range(spec.n_layers)
        ),
        tuple(
            torch.randn(n, *spec.bias_shape(i), generator=g) * 0.01 for i in range(spec.n_layers)
        ),
    )
    return unstack(batch)


def payload_bytes(net: Network) -> int:
    return sum(t.numel() * t.element_size() for t in (*net.weights, *net.biases))


def write_mnist_zoo(root: Path, nets: list[Network]) -> list[Path]:
    n_train = len(nets) * 6 // 7
    return [
        mnist_inr.write_network(
            root, net, split="training" if i < n_train else "testing", label=i % 10, image_id=i
        )
        for i, net in enumerate(nets)
    ]


def bench_mnist(work: Path, n_files: int, repeats: int) -> None:
    nets = random_sirens(n_files, seed=0)
    payload_mb = sum(payload_bytes(net) for net in nets) / MB

    # Writing thousands of files is not cheap: warm up on a few, then one timed run.
    write_mnist_zoo(work / "mnist_warmup", nets[:50])
    root = work / "mnist"
    t0 = time.perf_counter()
    write_mnist_zoo(root, nets)
    runs = [time.perf_counter() - t0]
    emit(
        "mnist_inr.write_network",
        n_files,
        runs,
        files_per_s=per_s(n_files, runs),
        payload_mb=round(payload_mb, 2),
        payload_mb_per_s=per_s(payload_mb, runs),
    )

    runs = timed_runs(lambda: mnist_inr.list_files(root), repeats)
    files = mnist_inr.list_files(root)
    if len(files) != n_files:
        raise RuntimeError(f"list_files found {len(files)} of the {n_files} files written")
    emit("mnist_inr.list_files", n_files, runs, files_per_s=per_s(n_files, runs))

    disk_mb = sum(f.stat().st_size for f in files) / MB
    read: list[Network] = []

    def read_all() -> None:
        read[:] = [mnist_inr.read_network(f) for f in files]

    runs = timed_runs(read_all, repeats)
    read_payload_mb = sum(payload_bytes(net) for net in read) / MB
    emit(
        "mnist_inr.read_network",
        n_files,
        runs,
        networks_per_s=per_s(n_files, runs),
        payload_mb=round(read_payload_mb, 2),
        payload_mb_per_s=per_s(read_payload_mb, runs),
        disk_mb=round(disk_mb, 2),
        disk_mb_per_s=per_s(disk_mb, runs),
    )

    def torch_load_all() -> None:
        for f in files:
            torch.load(f, map_location="cpu", weights_only=True)

    runs = timed_runs(torch_load_all, repeats)
    emit(
        "torch.load (baseline, no checks)",
        n_files,
        runs,
        networks_per_s=per_s(n_files, runs),
        disk_mb_per_s=per_s(disk_mb, runs),
    )


def bench_cnn_zoo(work: Path, n_rows: int, repeats: int, chunk: int) -> None:
    rng = np.random.default_rng(1)
    # Tiling a block of random rows is much cheaper than drawing n_rows x 4970 normals, and the
    # values do not matter to an uncompressed .npy; the roundtrip check below still sees them all.
    block = rng.standard_normal((min(n_rows, 1000), cnn_zoo.N_PARAMS), dtype=np.float32)
    rows = np.resize(block * np.float32(0.1), (n_rows, cnn_zoo.N_PARAMS))
    steps = np.resize([0, 1, 2, 3, 20, 40, 60, 80, 86], n_rows)
    metrics = pd.DataFrame(
        {
            "step": steps,
            "test_accuracy": rng.random(n_rows),
            "config.activation": np.resize(np.repeat(["relu", "tanh"], 9), n_rows),
        }
    )
    weights_mb = rows.nbytes / MB

    cnn_zoo.write_zoo(work / "zoo_warmup", rows[:100], metrics.iloc[:100])
    root = work / "zoo"
    t0 = time.perf_counter()
    cnn_zoo.write_zoo(root, rows, metrics)  # hundreds of MB: one run, not repeated
    runs = [time.perf_counter() - t0]
    emit(
        "cnn_zoo.write_zoo",
        n_rows,
        runs,
        rows_per_s=per_s(n_rows, runs),
        weights_mb=round(weights_mb, 1),
        weights_mb_per_s=per_s(weights_mb, runs),
    )

    runs = timed_runs(lambda: cnn_zoo.open_weights(root), repeats)
    emit("cnn_zoo.open_weights", n_rows, runs, note="mmap + layout.csv + metrics.csv.gz checks")

    weights = cnn_zoo.open_weights(root)
    layout = cnn_zoo.read_layout(root)
    starts = range(0, n_rows, chunk)
    nets: list[Network] = []

    def to_networks() -> None:
        nets[:] = [cnn_zoo.rows_to_network(weights[s : s + chunk], layout, "relu") for s in starts]

    runs = timed_runs(to_networks, repeats)
    emit(
        "cnn_zoo.rows_to_network",
        n_rows,
        runs,
        chunk_rows=chunk,
        rows_per_s=per_s(n_rows, runs),
        mb_per_s=per_s(weights_mb, runs),
        note="from the memory-mapped weights.npy (page cache warm)",
    )

    back: list[np.ndarray] = []

    def to_rows() -> None:
        back[:] = [cnn_zoo.network_to_rows(net) for net in nets]

    runs = timed_runs(to_rows, repeats)
    roundtrip_exact = bool(np.array_equal(np.concatenate(back), rows))
    emit(
        "cnn_zoo.network_to_rows",
        n_rows,
        runs,
        chunk_rows=chunk,
        rows_per_s=per_s(n_rows, runs),
        mb_per_s=per_s(weights_mb, runs),
        roundtrip_exact=roundtrip_exact,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-files", type=int, default=2000, help="MNIST-INR .pth files")
    parser.add_argument("--n-rows", type=int, default=20000, help="Small CNN Zoo weights.npy rows")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cheap measurement")
    parser.add_argument("--chunk", type=int, default=1024, help="rows per rows_to_network call")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    parser.add_argument("--tmpdir", type=Path, default=None, help="parent of the temporary zoos")
    args = parser.parse_args()
    if min(args.n_files, args.n_rows, args.repeats, args.chunk) < 1:
        parser.error("--n-files, --n-rows, --repeats and --chunk must be at least 1")
    torch.set_num_threads(args.threads or 1)

    with tempfile.TemporaryDirectory(prefix="format_readers_", dir=args.tmpdir) as tmp:
        bench_mnist(Path(tmp), args.n_files, args.repeats)
        bench_cnn_zoo(Path(tmp), args.n_rows, args.repeats, args.chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
