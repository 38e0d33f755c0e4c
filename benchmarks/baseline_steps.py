"""Training steps per second of each model kind at the embedded default's quick settings.

One JSON line per (task, kind): steps_per_s of a full step (forward, loss, backward, clip 10,
AdamW) on random networks of the task's architecture (INR classification: the MNIST INR
layout; generalization: the Small CNN Zoo layout; editing: the MNIST INR layout, loss on the
edit itself, without rendering), and ratio_to_scalegmn, the kind's time per step over ScaleGMN's
(the tables' budget: a baseline job should stay within ~1.5x a ScaleGMN job). Kinds run
interleaved, round by round, so a busy machine slows them alike.

Usage: python benchmarks/baseline_steps.py [--kinds scalegmn ng_gnn ng_t] [--steps 20]
       [--threads 1] [--override '{"d_hid": 16, "n_layers": 3}'] [--batch-size 32]
       [--kind-overrides '{"ng_t": {"attention": "neighbours"}}']   (per kind, over --override)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import random_network

PRESETS = {"classification": "mnist_cls/scalegmn", "generalization": "cifar10/scalegmn_relu",
           "editing": "mnist_editing/scalegmn"}


def _step_fn(kind: str, task: str, overrides: dict, batch_size: int):
    name = PRESETS[task]
    preset = get_preset(name)
    spec = preset_spec(name)
    model = build_model(preset.model.override({**overrides, "kind": kind}), spec, task=task,
                        n_outputs=preset_outputs(preset))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    net = random_network(spec, (batch_size,), dtype=torch.float32)
    y = torch.randint(0, 10, (batch_size,)) if task == "classification" else torch.rand(batch_size)
    batch = WeightBatch(net, y=y)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(batch)
        if task == "classification":
            loss = torch.nn.functional.cross_entropy(out, batch.y)
        elif task == "generalization":
            loss = torch.nn.functional.mse_loss(torch.sigmoid(out).reshape(-1), batch.y)
        else:
            loss = sum(t.pow(2).mean() for part in out for t in part)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()

    return step


def main() -> None:
    """Time each kind per task and print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", nargs="+", default=["scalegmn", "ng_gnn", "ng_t"])
    parser.add_argument("--tasks", nargs="+", default=list(PRESETS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--override", default='{"d_hid": 16, "n_layers": 3, "dropout": 0.0}')
    parser.add_argument("--kind-overrides", default="{}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = json.loads(args.override)
    per_kind = {k: {**overrides, **json.loads(args.kind_overrides).get(k, {})} for k in args.kinds}
    for task in args.tasks:
        steps = {k: _step_fn(k, task, per_kind[k], args.batch_size) for k in args.kinds}
        for fn in steps.values():  # warm-up
            fn()
        spent = dict.fromkeys(steps, 0.0)
        for _ in range(args.steps):
            for k, fn in steps.items():
                t = time.perf_counter()
                fn()
                spent[k] += time.perf_counter() - t
        ref = spent.get("scalegmn")
        for k, s in spent.items():
            print(json.dumps({"task": task, "kind": k, "batch_size": args.batch_size, "threads": args.threads,
                              "overrides": per_kind[k], "steps_per_s": round(args.steps / s, 2),
                              "ratio_to_scalegmn": round(s / ref, 2) if ref else None}), flush=True)


if __name__ == "__main__":
    main()
