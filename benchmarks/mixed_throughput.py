"""Training throughput on a batch of mixed-architecture CNNs vs a same-architecture batch.

Issue 14's bar: training on a batch of 128 mixed CNNs (CNN Wild Park-like: 2-5 conv layers,
4-32 channels, kernels 3/5/7, an activation per layer among relu, leaky_relu, gelu, tanh,
sigmoid and identity, residual connections) runs at >= 50% of the networks/s of a
same-architecture batch of the same total parameter count.

Prints one JSON line per configuration:

- ``mixed``: the mixed batch, a model built for its ZooSpec (general, index-based graph path);
- ``mixed_uncached``: the same, with the per-architecture topology caches cleared before every
  step (CNN Wild Park's architectures are nearly all distinct: a batch rarely repeats one);
- ``same_arch_fast``: one ReLU CNN architecture whose parameter count per network is the mixed
  batch's mean, a model built for that NetworkSpec (block fast path);
- ``same_arch_general``: the same batch through the ZooSpec model (the general path alone);

then a ``summary`` line with ``mixed / same_arch_fast`` (the bar). Each: train_networks_per_s
(a training step: forward, the generalization loss, backward, clip 10, AdamW; median of
--steps), infer_networks_per_s, graph nodes and edges per network, parameters per network.

Runs with MALLOC_MMAP_THRESHOLD_=1048576 (re-executing itself), as model_throughput.py does:
glibc otherwise keeps freed activation buffers and the page faults of fresh ones dominate
(--default-malloc turns it off).

Usage: OMP_NUM_THREADS=1 python benchmarks/mixed_throughput.py [--batch 128] [--steps 3]
       [--preset cifar10/scalegmn_hetero] [--override '{"d_hid": 32}'] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

import torch

from scalegmn.execution import ExecutionConfig
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.nn.graph_batch import _mixed_local
from scalegmn.train.loop import _batch_loss, optimizer_step
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.graph import ZooSpec, mixed_topology
from scalegmn.weightspace.network import NetworkSpec, stack
from scalegmn.weightspace.testing import random_network

MMAP_THRESHOLD = "1048576"
ACTIVATIONS = ("relu", "leaky_relu", "gelu", "tanh", "sigmoid", "identity")


def wild_park_like_spec(rng: random.Random) -> NetworkSpec:
    """A random CNN: conv layers (padding k // 2) with random widths and activations, global
    pooling, a linear head 10 wide; a residual connection with probability 1/2 when deep enough."""
    n_conv = rng.randint(2, 5)
    widths = [rng.choice((4, 8, 16, 32)) for _ in range(n_conv)]
    k = rng.choice((3, 5, 7))
    residual = [-1] * (n_conv + 1)
    if n_conv >= 3 and rng.random() < 0.5:
        i = rng.randint(2, n_conv - 1)
        residual[i] = rng.randint(0, i - 2)
    return NetworkSpec((3, *widths, 10), (*(rng.choice(ACTIVATIONS) for _ in widths), "identity"),
                       layer_kinds=("conv",) * n_conv + ("linear",), kernel_size=(k, k),
                       conv_padding=k // 2, residual=residual)


def same_arch_spec(params: float) -> NetworkSpec:
    """A 3-conv 5x5 ReLU CNN whose parameter count is closest to ``params``."""
    def spec(c: int) -> NetworkSpec:
        return NetworkSpec((3, c, c, c, 10), ("relu",) * 3 + ("identity",),
                           layer_kinds=("conv",) * 3 + ("linear",), kernel_size=(5, 5), conv_padding=2)

    return min((spec(c) for c in range(2, 65)), key=lambda s: abs(s.num_params - params))


def clear_topology_caches() -> None:
    """Forget every architecture's graph topology (host and device copies)."""
    mixed_topology.cache_clear()
    _mixed_local.cache_clear()


def measure(label: str, model, batch, steps: int, execution: ExecutionConfig, specs,
            before_step=None) -> dict:
    """Median training step and inference rate of ``model`` on ``batch`` (``before_step``
    runs inside each timed step first)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        if before_step is not None:
            before_step()
        optimizer_step(model, opt, batch, lambda part: _batch_loss(model, part, "generalization", None)[0],
                       clip_grad_norm=10.0, execution=execution)

    model.train()
    step()  # warm-up
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    model.eval()
    infer = []
    with torch.no_grad():
        for _ in range(steps):
            t = time.perf_counter()
            if before_step is not None:
                before_step()
            model(batch)
            infer.append(time.perf_counter() - t)
    n = batch.size
    return {
        "config": label,
        "batch_size": n,
        "architectures": len({s for s in specs}),
        "train_networks_per_s": n / statistics.median(times),
        "infer_networks_per_s": n / statistics.median(infer),
        "params_per_network": sum(s.num_params for s in specs) / n,
        "nodes_per_network": sum(s.n_nodes for s in specs) / n,
        "edges_per_network": sum(s.n_edges + sum(m for *_, m in s.residual_pairs()) for s in specs) / n,
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--preset", default="cifar10/scalegmn_hetero",
                        help="a hetero preset (or any, with --override '{\"kind\": \"gmn\"}')")
    parser.add_argument("--override", default="{}", help="model settings over the preset, as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--default-malloc", action="store_true")
    args = parser.parse_args()
    if not args.default_malloc and os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    preset = get_preset(args.preset)
    config = preset.model.override(json.loads(args.override))
    execution = ExecutionConfig().override({"micro_batch_size": None})

    specs = [wild_park_like_spec(rng) for _ in range(args.batch)]
    nets = [random_network(s, (), seed=k, scale=0.1, dtype=torch.float32) for k, s in enumerate(specs)]
    by_spec: dict[NetworkSpec, list] = {}
    for s, n in zip(specs, nets, strict=True):
        by_spec.setdefault(s, []).append(n)
    order = [s for s in by_spec for _ in by_spec[s]]
    y = torch.rand(args.batch)
    mixed = MixedBatch(tuple(stack(ns) for ns in by_spec.values()), y=y)
    zoo = ZooSpec.covering(specs)
    same = same_arch_spec(sum(s.num_params for s in specs) / args.batch)
    uniform = WeightBatch(random_network(same, (args.batch,), seed=1, scale=0.1, dtype=torch.float32), y=y,
                          sign_mask=torch.zeros(args.batch, dtype=torch.bool))

    def model_for(spec):
        torch.manual_seed(args.seed)
        return build_model(config, spec, task="generalization", n_outputs=1, execution=execution)

    general = model_for(zoo)
    rows = [
        measure("mixed", general, mixed, args.steps, execution, order),
        measure("mixed_uncached", general, mixed, args.steps, execution, order, clear_topology_caches),
        measure("same_arch_fast", model_for(same), uniform, args.steps, execution, [same] * args.batch),
        measure("same_arch_general", model_for(ZooSpec.covering([same])), uniform, args.steps, execution,
                [same] * args.batch),
    ]
    for row in rows:
        row.update(preset=args.preset, model_override=json.loads(args.override))
        print(json.dumps(row), flush=True)
    fast = rows[2]["train_networks_per_s"]
    print(json.dumps({"config": "summary", "same_arch_spec": list(same.layout),
                      "mixed_over_same_arch": rows[0]["train_networks_per_s"] / fast,
                      "mixed_uncached_over_same_arch": rows[1]["train_networks_per_s"] / fast,
                      "general_over_fast_same_arch": rows[3]["train_networks_per_s"] / fast,
                      "bar": 0.5}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
