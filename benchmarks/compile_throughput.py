"""Does ``torch.compile`` help? Eager vs compiled networks/s of one preset, training step and
inference, with the compile time. JSON lines.

    python benchmarks/compile_throughput.py [--device cpu] [--preset mnist_cls/scalegmn]
        [--batch 32] [--steps 3] [--override '{"n_layers": 3, "d_hid": 16}'] [--memory plain]

The lean blocks (``memory: auto``/``lean``) are autograd Functions with a Python loop over row
chunks: dynamo breaks the graph at each, so ``--memory plain`` is what compile can fuse.
Not used by the package unless it measurably helps (README "GPU": the figure).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from scalegmn.execution import ExecutionConfig
from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.train.loop import _batch_loss, optimizer_step
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import random_network


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, steps: int, device: str) -> tuple[float, float]:
    """(first call's seconds, median of the next ``steps``)."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="mnist_cls/scalegmn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--override", default="{}")
    parser.add_argument("--memory", default="plain")
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    args = parser.parse_args()
    preset, spec = get_preset(args.preset), preset_spec(args.preset)
    config = preset.model.override({"dropout": 0.0, **json.loads(args.override)})
    execution = ExecutionConfig(memory=args.memory)
    net = random_network(spec, (args.batch,), scale=0.1, dtype=torch.float32)
    batch = WeightBatch(net, y=torch.randint(0, preset_outputs(preset), (args.batch,))).to(args.device)
    for mode in args.modes:
        torch.manual_seed(0)
        model = build_model(config, spec, task=preset.task, n_outputs=preset_outputs(preset),
                            execution=execution).to(args.device)
        run = torch.compile(model) if mode == "compiled" else model
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def train(run=run, opt=opt, model=model):
            optimizer_step(model, opt, batch, lambda part: _batch_loss(run, part, preset.task, None)[0],
                           clip_grad_norm=10.0, execution=execution)

        model.train()
        first_train, train_s = timed(train, args.steps, args.device)
        model.eval()
        with torch.no_grad():
            first_infer, infer_s = timed(lambda run=run: run(batch), args.steps, args.device)
        print(json.dumps({"mode": mode, "preset": args.preset, "batch": args.batch, "memory": args.memory,
                          "override": json.loads(args.override), "device": args.device,
                          "first_train_step_s": round(first_train, 2), "first_infer_s": round(first_infer, 2),
                          "train_networks_per_s": round(args.batch / train_s, 2),
                          "infer_networks_per_s": round(args.batch / infer_s, 2),
                          "threads": torch.get_num_threads()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
