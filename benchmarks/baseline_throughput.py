"""Training steps/s of every model kind at the embedded default's quick settings, per table.

One JSON line per (table, kind): a full training step on a batch of random networks of the
table's zoo architecture (forward, the task's loss, backward, AdamW), at the table-level
settings of config.yaml (n_layers 3, d_hid 16, input_scaling rms, batch 32) with the row's
``model.kind`` (``--override``: the baseline rows' own overrides, e.g. ``{"d_hid": 8}``);
``ratio_to_scalegmn`` divides by ScaleGMN's steps/s (at the table's settings) in the same run.
Editing renders the edited INRs (28x28) as the pipeline's loss does. Run it with
``OMP_NUM_THREADS=1`` (a pipeline job's threads) and say whether the machine was contended.

Usage: python benchmarks/baseline_throughput.py [--steps 20] [--kinds scalegmn dws nfn_np nfn_hnp]
       [--override '{"d_hid": 8}']
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from scalegmn.models.catalogue import preset_spec
from scalegmn.models.metanetworks import build_model, count_parameters
from scalegmn.models.presets import get_preset
from scalegmn.train import editing
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import random_network

TABLES = {"table1": "mnist_cls/scalegmn", "table2": "cifar10/scalegmn_relu", "table3": "mnist_editing/scalegmn"}
QUICK = {"n_layers": 3, "d_hid": 16, "dropout": 0.0, "input_scaling": "rms"}
N_OUT = {"classification": 10, "generalization": 1, "editing": 0}


def loss_of(model, batch: WeightBatch, task: str) -> torch.Tensor:
    """The pipeline's loss of the task (editing: rendered edit against a fixed target)."""
    if task == "classification":
        return torch.nn.functional.cross_entropy(model(batch), batch.y)
    if task == "generalization":
        return torch.nn.functional.mse_loss(torch.sigmoid(model(batch)).reshape(-1), batch.y)
    dw, db = model(batch)
    rendered = editing.render(editing.apply_delta(batch.net, dw, db), editing.IMAGE_SHAPE)
    return editing.per_image_mse(rendered, torch.zeros_like(rendered)).mean()


def steps_per_s(preset_name: str, kind: str, steps: int, batch_size: int, override: dict) -> dict:
    """Build the row's model and time ``steps`` training steps after one warm-up step."""
    preset = get_preset(preset_name)
    spec = preset_spec(preset_name)
    extra = {} if kind == "scalegmn" else override  # ScaleGMN stays at the table's settings
    config = preset.model.override({**QUICK, **extra, "kind": kind})
    torch.manual_seed(0)
    model = build_model(config, spec, task=preset.task, n_outputs=N_OUT[preset.task])
    net = random_network(spec, (batch_size,), dtype=torch.float32)
    model.input_scale.calibrate(net)
    y = (torch.randint(0, 10, (batch_size,)) if preset.task == "classification"
         else torch.rand(batch_size))
    batch = WeightBatch(net, y=y, index=torch.arange(batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        opt.zero_grad()
        loss_of(model, batch, preset.task).backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    return {"preset": preset_name, "task": preset.task, "kind": kind, "params": count_parameters(model),
            "batch_size": batch_size, "steps_per_s": round(len(times) / sum(times), 2)}


def main() -> None:
    """Print one JSON line per (table, kind)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--kinds", nargs="+", default=["scalegmn", "dws", "nfn_np", "nfn_hnp"])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--override", default="{}",
                        help="JSON model overrides of the baseline rows (ScaleGMN keeps the quick settings)")
    args = parser.parse_args()
    override = json.loads(args.override)
    for table in args.tables:
        base = None
        for kind in ["scalegmn"] + [k for k in args.kinds if k != "scalegmn"]:
            if kind == "dws" and table == "table2":
                continue  # DWS reads MLPs only (and the paper has no DWS row in table 2)
            row = steps_per_s(TABLES[table], kind, args.steps, args.batch_size, override)
            base = base or row["steps_per_s"]
            row.update(table=table, ratio_to_scalegmn=round(row["steps_per_s"] / base, 2),
                       threads=torch.get_num_threads(), omp=os.environ.get("OMP_NUM_THREADS"))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
