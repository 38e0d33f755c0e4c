"""ScaleGMN training and inference throughput, peak memory and FLOPs on this machine.

Prints one JSON line per configuration (preset, batch size, memory mode):
train_networks_per_s (a full step: forward, cross-entropy, backward, clip 10, AdamW; gradients
accumulated over --micro-batch networks, default 32, the same step as the whole batch),
infer_networks_per_s, peak_mem_mb (RSS high-water of a fresh child process per configuration),
flops_per_network (torch.utils.flop_counter, our model, one training step), mm_gflops (fp32
torch.mm rate, median of 4096x4096 products) and effective_ceiling_fraction =
train_networks_per_s * ORIGINAL_FLOPS[preset] / (mm_gflops * 1e9): the fraction of the machine's
matmul rate the original model's FLOPs would need to train as fast as we do.

Children run with MALLOC_MMAP_THRESHOLD_=1048576 (recorded in each line): glibc otherwise
raises its mmap threshold after the first frees and keeps freed 18-70 MB activation buffers in
the heap, which inflates RSS by ~1 GB without any live tensor (--default-malloc turns it off).

Memory modes (--modes, ExecutionConfig.memory): auto (default: lean autograd of
scalegmn.nn.lean where plain autograd would keep more than --execution's lean_min_mb of
activations, default 0: every batch), lean, plain, checkpoint.

--mixed adds the mixed-architecture lines of benchmarks/mixed_throughput.py (issue 14's bar).

Usage: python benchmarks/model_throughput.py [--steps 2] [--batch-sizes 32 128] [--mixed]
       [--modes auto plain checkpoint] [--default-malloc] [--override '{"d_hid": 16}']
       [--execution '{"lean_min_mb": 512}']
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ORIGINAL_FLOPS = {"mnist_cls/scalegmn": 9.257e9, "mnist_cls/scalegmn_bidir": 16.074e9}
MMAP_THRESHOLD = "1048576"


def sync(device: torch.device | str = "cpu") -> None:
    """Wait for ``device``'s queued work (CUDA kernels run asynchronously; no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def mm_gflops(n: int = 4096, reps: int = 5, *, device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """Median ``torch.mm`` rate of n x n products, GFLOP/s (TF32 when its flag is on, on CUDA)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


MODES = ("auto", "lean", "plain", "checkpoint")  # ExecutionConfig.memory


def peak_memory_mb(device: torch.device | str) -> float:
    """Peak memory so far: CUDA's allocator high-water (torch.cuda.reset_peak_memory_stats resets
    it), else this process's RSS high-water."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(preset_name: str, batch_size: int, mode: str, steps: int, micro_batch: int,
          override: dict, execution_override: dict, device: str = "cpu") -> dict:
    """One configuration's figures (a fresh process per configuration on CPU: RSS high-water)."""
    from torch.utils.flop_counter import FlopCounterMode

    from scalegmn.execution import ExecutionConfig
    from scalegmn.models.catalogue import preset_outputs, preset_spec
    from scalegmn.models.metanetworks import as_flat_graph, build_model
    from scalegmn.models.presets import get_preset
    from scalegmn.train.loop import _batch_loss, optimizer_step
    from scalegmn.weightspace.batch import WeightBatch
    from scalegmn.weightspace.testing import random_network

    preset = get_preset(preset_name)
    spec = preset_spec(preset_name)
    config = preset.model.override(override)
    execution = ExecutionConfig().override(
        {**execution_override, "memory": mode, "micro_batch_size": micro_batch or None})
    model = build_model(config, spec, task=preset.task, n_outputs=preset_outputs(preset),
                        execution=execution).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=preset.optim.lr,
                            weight_decay=preset.optim.weight_decay)
    n_out = preset_outputs(preset)

    def random_batch(size: int) -> WeightBatch:
        # Targets of the preset's task; mixed activations (half odd) for the hetero symmetry.
        y = (torch.randint(0, n_out, (size,)) if preset.task == "classification" else torch.rand(size))
        mask = torch.arange(size) % 2 == 0 if config.symmetry == "hetero" else None
        net = random_network(spec, (size,), scale=0.1, dtype=torch.float32)
        return WeightBatch(net, y=y, sign_mask=mask).to(device)

    batch = random_batch(batch_size)
    lean_used = bool(model.use_lean(as_flat_graph(batch, config.input_node_value)))

    def step() -> None:
        # The training loop's own step: gradients accumulated over micro-batches (same step).
        optimizer_step(
            model,
            opt,
            batch,
            lambda part: _batch_loss(model, part, preset.task, None)[0],  # the training loss
            clip_grad_norm=10.0,
            execution=execution,
        )

    model.train()
    step()  # warm-up
    times = []
    for _ in range(steps):
        sync(device)
        t = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t)
    model.eval()
    infer = []
    with torch.no_grad():
        for _ in range(steps):
            sync(device)
            t = time.perf_counter()
            model(batch)
            sync(device)
            infer.append(time.perf_counter() - t)
    peak_mb = peak_memory_mb(device)
    # FLOPs per network do not depend on the batch size; count them last, on a small batch,
    # because the counting mode itself holds memory.
    model.train()
    batch = random_batch(4)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops() / 4
    return {
        "preset": preset_name,
        "model_override": override,
        "batch_size": batch_size,
        "memory_mode": mode,
        "lean_autograd_used": lean_used,
        "checkpoint": execution.checkpoint,
        "micro_batch_size": min(micro_batch, batch_size) if micro_batch else batch_size,
        "train_networks_per_s": batch_size / statistics.median(times),
        "infer_networks_per_s": batch_size / statistics.median(infer),
        "peak_mem_mb": peak_mb,
        "flops_per_network": flops,
        "threads": torch.get_num_threads(),
        "precision": execution.precision,
        "device": str(device),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per configuration")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--presets", nargs="+", default=list(ORIGINAL_FLOPS))
    parser.add_argument("--default-malloc", action="store_true")
    parser.add_argument("--micro-batch", type=int, default=32,
                        help="gradient-accumulation micro-batch of the training step (0 = whole batch)")
    parser.add_argument("--modes", nargs="+", default=["auto"], choices=MODES,
                        help="memory modes: auto (lean autograd where plain autograd would keep "
                             "> lean_min_mb), lean (always), plain autograd, checkpoint (full "
                             "activation checkpointing)")
    parser.add_argument("--override", default="{}",
                        help='model settings over the preset, as JSON, e.g. the quick settings of '
                             'config.yaml: \'{"n_layers": 3, "d_hid": 16}\'')
    parser.add_argument("--execution", default="{}",
                        help='execution settings (config.yaml\'s execution: section) as JSON, e.g. '
                             '\'{"lean_min_mb": 512}\'; --modes and --micro-batch set memory and '
                             'micro_batch_size')
    parser.add_argument("--device", default="cpu", help="cpu | cuda (benchmarks/gpu_check.py runs CUDA)")
    parser.add_argument("--mixed", action="store_true",
                        help="also the mixed-architecture line (benchmarks/mixed_throughput.py: 128 "
                             "mixed CNNs vs a same-architecture batch, with --override and --steps)")
    parser.add_argument("--child", nargs=3, metavar=("PRESET", "BATCH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, bs, mode = args.child
        print(json.dumps(child(name, int(bs), mode, args.steps, args.micro_batch,
                               json.loads(args.override), json.loads(args.execution), args.device)),
              flush=True)
        return 0

    rate = mm_gflops(device=args.device)
    env = dict(os.environ)
    if not args.default_malloc:
        env["MALLOC_MMAP_THRESHOLD_"] = MMAP_THRESHOLD
    configs = [(p, b, m) for m in args.modes for p in args.presets for b in args.batch_sizes]
    started = time.perf_counter()
    for name, bs, mode in configs:
        proc = subprocess.run(
            [sys.executable, __file__, "--steps", str(args.steps), "--micro-batch", str(args.micro_batch),
             "--override", args.override, "--execution", args.execution, "--device", args.device,
             "--child", name, str(bs), mode],
            env=env, capture_output=True, text=True, check=True,
        )
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        record["mm_gflops"] = rate
        original = ORIGINAL_FLOPS.get(name)  # the original's FLOPs: known for these presets only
        record["effective_ceiling_fraction"] = (
            None if original is None else record["train_networks_per_s"] * original / (rate * 1e9)
        )
        record["malloc_mmap_threshold"] = env.get("MALLOC_MMAP_THRESHOLD_", "default")
        print(json.dumps(record, sort_keys=True), flush=True)
    if args.mixed:
        mixed = Path(__file__).with_name("mixed_throughput.py")
        proc = subprocess.run([sys.executable, str(mixed), "--steps", str(args.steps), "--override",
                               args.override], env=env, capture_output=True, text=True, check=True)
        print(proc.stdout.strip(), flush=True)
    print(json.dumps({"total_seconds": time.perf_counter() - started}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
