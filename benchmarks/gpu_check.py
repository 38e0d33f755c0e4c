"""One-shot check of a machine for ScaleGMN training: device, matmul rates, model throughput per
preset x batch x precision, the data path at real size, one real-size epoch. JSON lines.

    python benchmarks/gpu_check.py                     # CUDA when present: < 8 min on one GPU
    python benchmarks/gpu_check.py --device cpu --quick  # CPU: < 3 min, every field, scaled down

Lines (``what``):
- ``device``: name, memory, torch/CUDA versions, threads.
- ``matmul``: ``torch.mm`` GFLOP/s at fp32, tf32 and bf16 (n x n products; on CPU tf32 is n/a:
  CPUs have no TF32, ``precision: tf32`` computes as float32 there).
- ``model``: per preset (mnist_cls/scalegmn, mnist_cls/scalegmn_bidir, cifar10/scalegmn_relu,
  cifar10/scalegmn_hetero_bidir) x batch (32, 128, 512) x precision (float32, bf16) x memory
  mode: train and inference networks/s (benchmarks/model_throughput.py's measurement: the
  training loop's own step), peak memory (CUDA allocator high-water per configuration; on CPU the
  RSS high-water of a fresh process per configuration), FLOPs per network
  (torch.utils.flop_counter) and ``matmul_fraction`` = train networks/s x FLOPs per network /
  the matmul rate of that precision.
- ``data``: a store of MNIST-format networks at real size (55,000; --quick: 4,096): building
  it, loading it resident (load_split onto the device) and one epoch of batches resident and
  streamed (scalegmn.data.stream.StreamedSplit: background reader, pinned memory on CUDA).
- ``epoch``: one epoch of mnist_cls/scalegmn (the paper preset) over 55,000 networks through
  scalegmn.train.loop.fit, and the projected wall time of the paper's schedule (its epochs x
  the epoch time; evaluation not included). --quick: a few batches, projected to 55,000.

--quick lines carry ``"quick": true`` and the sizes they were scaled from.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("model_throughput", HERE / "model_throughput.py")
mt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mt)

PRESETS = ["mnist_cls/scalegmn", "mnist_cls/scalegmn_bidir", "cifar10/scalegmn_relu",
           "cifar10/scalegmn_hetero_bidir"]
BATCHES = [32, 128, 512]
PRECISIONS = ["float32", "bf16"]
MNIST_TRAIN = 55_000  # the real-size epoch: 55,000 MNIST-format networks
EPOCH_PRESET = "mnist_cls/scalegmn"


def emit(record: dict) -> None:
    print(json.dumps(record, sort_keys=True, default=str), flush=True)


def device_info(device: torch.device) -> dict:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 2),
                "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                "multiprocessors": props.multi_processor_count}
    name = platform.processor() or "cpu"
    mem = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 2**20, 2)
    except OSError:
        pass
    return {"name": name, "memory_gb": mem, "capability": torch.backends.cpu.get_cpu_capability(),
            "cuda": None}


def matmul_rates(device: torch.device, quick: bool) -> dict:
    n = (1024 if quick else 4096) if device.type == "cpu" else 8192
    reps = 3 if quick else 5
    rates = {"n": n, "fp32_gflops": mt.mm_gflops(n, reps, device=str(device))}
    if device.type == "cuda":
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            rates["tf32_gflops"] = mt.mm_gflops(n, reps, device=str(device))
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
    else:
        rates["tf32_gflops"] = None
        rates["tf32_note"] = "n/a on CPU: no TF32 units; precision tf32 computes as float32 there"
    rates["bf16_gflops"] = mt.mm_gflops(n, reps, device=str(device), dtype=torch.bfloat16)
    return rates


def model_figures(device: torch.device, preset: str, batch: int, precision: str, mode: str,
                  steps: int) -> dict:
    """model_throughput's measurement: in this process on CUDA (peak memory reset per
    configuration), in a fresh child process on CPU (its RSS high-water)."""
    execution = {"precision": precision}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        rec = mt.child(preset, batch, mode, steps, 0, {}, execution, str(device))
        torch.cuda.empty_cache()
        rec["peak_mem_kind"] = "cuda max_memory_allocated"
        return rec
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": mt.MMAP_THRESHOLD}
    proc = subprocess.run(
        [sys.executable, str(HERE / "model_throughput.py"), "--steps", str(steps), "--micro-batch", "0",
         "--execution", json.dumps(execution), "--device", "cpu", "--child", preset, str(batch), mode],
        env=env, capture_output=True, text=True, check=True)
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["peak_mem_kind"] = "process RSS high-water"
    return rec


def write_mnist_store(path: Path, n: int) -> float:
    """A store of ``n`` random MNIST-format INRs (random valid weights: data-path throughput
    only); returns the seconds it took."""
    from scalegmn.data.cache import StoreContent, write_store
    from scalegmn.weightspace.network import dws_siren_spec
    from scalegmn.weightspace.testing import random_network

    t0 = time.perf_counter()
    net = random_network(dws_siren_spec(), (n,), scale=0.1, dtype=torch.float32)
    content = StoreContent(nets=[net], y=np.arange(n, dtype=np.int64) % 10,
                           activation=np.full(n, "sine"), source=np.array([f"net{i}" for i in range(n)]),
                           table_row=np.arange(n))
    write_store(path, content, {"n_classes": 10})
    return time.perf_counter() - t0


def data_path(device: torch.device, work: Path, n: int, batch: int) -> list[dict]:
    from scalegmn.data.cache import load_split
    from scalegmn.data.stream import StreamedSplit, store_bytes

    store = work / "mnist_train.zarr"
    build_s = write_mnist_store(store, n)
    mb = store_bytes(store) / 2**20
    out = [{"what": "data", "step": "write_store", "networks": n, "mb": round(mb, 1),
            "seconds": round(build_s, 3), "networks_per_s": round(n / build_s, 1)}]
    t0 = time.perf_counter()
    split = load_split(store, device=device)
    mt.sync(device)
    load_s = time.perf_counter() - t0
    out.append({"what": "data", "step": "load_split_resident", "networks": n, "mb": round(mb, 1),
                "seconds": round(load_s, 3), "networks_per_s": round(n / load_s, 1),
                "mb_per_s": round(mb / load_s, 1)})

    def epoch(batches) -> float:
        t = time.perf_counter()
        count = 0
        for b in batches:
            count += b.size
        mt.sync(device)
        assert count == n, (count, n)
        return time.perf_counter() - t

    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(n, generator=g)
    dt = epoch(split.get(perm[lo: lo + batch].to(device)) for lo in range(0, n, batch))
    out.append({"what": "data", "step": "epoch_batches_resident", "networks": n, "batch": batch,
                "seconds": round(dt, 3), "networks_per_s": round(n / dt, 1)})
    streamed = StreamedSplit(store, device=device)
    dt = epoch(streamed.batches(batch, shuffle=True, generator=g))
    out.append({"what": "data", "step": "epoch_batches_streamed", "networks": n, "batch": batch,
                "block_networks": streamed.block_networks, "pinned": device.type == "cuda",
                "seconds": round(dt, 3), "networks_per_s": round(n / dt, 1)})
    return out


def real_epoch(device: torch.device, n: int, precision: str) -> dict:
    """One epoch of the paper preset over ``n`` networks through fit (train steps and one
    evaluation of 16 networks); the projection of the paper's schedule scales it by its epochs."""
    from scalegmn.data.split_protocol import MemorySplit
    from scalegmn.execution import ExecutionConfig
    from scalegmn.models.catalogue import preset_outputs, preset_spec
    from scalegmn.models.metanetworks import build_model
    from scalegmn.models.presets import get_preset
    from scalegmn.train.loop import fit
    from scalegmn.weightspace.testing import random_network

    preset = get_preset(EPOCH_PRESET)
    spec = preset_spec(EPOCH_PRESET)
    bs = preset.optim.batch_size
    execution = ExecutionConfig(precision=precision)
    model = build_model(preset.model, spec, task=preset.task, n_outputs=preset_outputs(preset),
                        execution=execution)

    def split(size: int, seed: int) -> MemorySplit:
        net = random_network(spec, (size,), seed=seed, scale=0.1, dtype=torch.float32)
        return MemorySplit(net.to(device=device), y=(torch.arange(size) % 10).to(device), n_classes=10)

    splits = {"train": split(n, 0), "val": split(8, 1), "test": split(8, 2)}  # evaluation: negligible
    steps = math.ceil(n / bs)
    loop = preset.optim.override({"epochs": None, "max_steps": steps, "eval_every_steps": None})
    t0 = time.perf_counter()
    fit(model, loop, preset.task, splits, seed=0, device=device, execution=execution)
    mt.sync(device)
    total = time.perf_counter() - t0
    per_network = total / n
    epochs = preset.optim.epochs
    return {"what": "epoch", "preset": EPOCH_PRESET, "precision": precision, "networks": n,
            "batch_size": bs, "steps": steps, "seconds": round(total, 2),
            "epoch_seconds_at_55000": round(per_network * MNIST_TRAIN, 1),
            "paper_epochs": epochs,
            "projected_full_schedule_hours": round(per_network * MNIST_TRAIN * epochs / 3600, 2),
            "note": "fit: train steps and one evaluation of an 8-network val and test split; "
                    "the schedule's per-epoch evaluations are not in the projection"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help="scaled down (CPU: < 3 min): batch 8, 1 timed step, 4,096-network data path, "
                             "a 2-batch epoch projected to 55,000 networks")
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--precisions", nargs="+", default=PRECISIONS)
    parser.add_argument("--modes", nargs="+", default=None,
                        help="memory modes (default: auto and plain on CUDA, auto on CPU)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["matmul", "model", "data", "epoch"])
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here; use --device cpu --quick")
    quick = args.quick
    batches = args.batch_sizes or ([8] if quick else BATCHES)
    modes = args.modes or (["auto", "plain"] if device.type == "cuda" else ["auto"])
    steps = 1 if quick else 3
    started = time.perf_counter()
    scaled = {"quick": quick}
    if quick:
        scaled["scaled_from"] = {"batch_sizes": BATCHES, "data_networks": MNIST_TRAIN,
                                 "epoch_networks": MNIST_TRAIN}
    emit({"what": "device", "device": str(device), **device_info(device), "torch": torch.__version__,
          "threads": torch.get_num_threads(), **scaled})
    rates = {}
    if "matmul" not in args.skip:
        rates = matmul_rates(device, quick)
        emit({"what": "matmul", **rates, **scaled})
    if "model" not in args.skip:
        for mode in modes:
            for precision in args.precisions:
                rate = rates.get("bf16_gflops" if precision == "bf16" else "fp32_gflops")
                for preset in args.presets:
                    for bs in batches:
                        try:
                            rec = model_figures(device, preset, bs, precision, mode, steps)
                        except torch.cuda.OutOfMemoryError:  # one configuration too big: say so, go on
                            torch.cuda.empty_cache()
                            emit({"what": "model", "preset": preset, "batch_size": bs, "precision": precision,
                                  "memory_mode": mode, "error": "CUDA out of memory", **scaled})
                            continue
                        rec["matmul_fraction"] = (
                            rec["train_networks_per_s"] * rec["flops_per_network"] / (rate * 1e9)
                            if rate else None)
                        rec["matmul_rate_gflops"] = rate
                        emit({"what": "model", **rec, **scaled})
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        if "data" not in args.skip:
            for rec in data_path(device, Path(tmp), 4096 if quick else MNIST_TRAIN, 128):
                emit({**rec, **scaled})
    if "epoch" not in args.skip:
        n = 2 * 128 if quick else MNIST_TRAIN
        emit({**real_epoch(device, n, "float32"), **scaled})
    emit({"what": "total", "seconds": round(time.perf_counter() - started, 1), **scaled})
    return 0


if __name__ == "__main__":
    sys.exit(main())
