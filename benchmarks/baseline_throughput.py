"""Training steps/s of every model kind at the embedded default's quick settings, per table.

One JSON line per (table, kind): a full training step (forward, the task's loss, backward,
gradient clipping at 10, AdamW) on a batch of random networks of the table's zoo architecture,
at the table-level settings of config.yaml (n_layers 3, d_hid 16, input_scaling rms, batch 32)
with the row's ``model.kind`` and its row overrides (``--kind-overrides``, e.g. the quick NG-T's;
the defaults are config.yaml's rows). Editing renders the edited INRs (28x28) as the pipeline's
loss does. ``time_ratio_to_scalegmn`` is the kind's time per step over ScaleGMN's in the same
run (the tables' budget: a baseline job should stay within ~1.5x a ScaleGMN job). Kinds run
interleaved, round by round, so a busy machine slows them alike. Run it with
``OMP_NUM_THREADS=1`` (a pipeline job's threads) and say whether the machine was contended.

Usage: python benchmarks/baseline_throughput.py [--steps 20] [--tables table1 table2 table3]
       [--kinds scalegmn dws nfn_np nfn_hnp ng_gnn ng_t] [--kind-overrides '{"ng_t": {...}}']
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
KINDS = ["scalegmn", "dws", "nfn_np", "nfn_hnp", "ng_gnn", "ng_t"]
# config.yaml's row overrides of the baselines (table 2's NFN rows use d_hid 8: ROW_OVERRIDES_T2)
NG_T_QUICK = {"attention": "neighbours", "direction": "bidirectional", "d_hid": 8, "n_heads": 2,
              "fourier_sigma": 0.0}
ROW_OVERRIDES = {"ng_t": NG_T_QUICK}
ROW_OVERRIDES_BY_TABLE = {"table2": {"nfn_np": {"d_hid": 8}, "nfn_hnp": {"d_hid": 8}},
                          "table3": {"ng_t": {**NG_T_QUICK, "n_layers": 2}}}


def loss_of(model, batch: WeightBatch, task: str) -> torch.Tensor:
    """The pipeline's loss of the task (editing: rendered edit against a fixed target)."""
    if task == "classification":
        return torch.nn.functional.cross_entropy(model(batch), batch.y)
    if task == "generalization":
        return torch.nn.functional.mse_loss(torch.sigmoid(model(batch)).reshape(-1), batch.y)
    dw, db = model(batch)
    rendered = editing.render(editing.apply_delta(batch.net, dw, db), editing.IMAGE_SHAPE)
    return editing.per_image_mse(rendered, torch.zeros_like(rendered)).mean()


def step_fn(preset_name: str, kind: str, batch_size: int, override: dict):
    """The row's model and one training step on a fixed random batch."""
    preset = get_preset(preset_name)
    spec = preset_spec(preset_name)
    config = preset.model.override({**QUICK, **override, "kind": kind})
    torch.manual_seed(0)
    model = build_model(config, spec, task=preset.task, n_outputs=N_OUT[preset.task])
    net = random_network(spec, (batch_size,), dtype=torch.float32)
    model.input_scale.calibrate(net)
    y = (torch.randint(0, 10, (batch_size,)) if preset.task == "classification"
         else torch.rand(batch_size))
    batch = WeightBatch(net, y=y, index=torch.arange(batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_of(model, batch, preset.task).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()

    return model, step


def main() -> None:
    """Print one JSON line per (table, kind)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--kinds", nargs="+", default=KINDS)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--kind-overrides", default=None,
                        help="JSON {kind: model overrides} replacing config.yaml's row overrides")
    args = parser.parse_args()
    given = None if args.kind_overrides is None else json.loads(args.kind_overrides)
    for table in args.tables:
        kinds = ["scalegmn"] + [k for k in args.kinds if k != "scalegmn"]
        if table == "table2":
            kinds = [k for k in kinds if k != "dws"]  # DWS reads MLPs only (no DWS row in table 2)
        rows = given if given is not None else {**ROW_OVERRIDES, **ROW_OVERRIDES_BY_TABLE.get(table, {})}
        steps = {k: step_fn(TABLES[table], k, args.batch_size, rows.get(k, {})) for k in kinds}
        for _, fn in steps.values():  # warm-up
            fn()
        spent = dict.fromkeys(steps, 0.0)
        for _ in range(args.steps):
            for k, (_, fn) in steps.items():
                t = time.perf_counter()
                fn()
                spent[k] += time.perf_counter() - t
        for k, (model, _) in steps.items():
            print(json.dumps({
                "table": table, "preset": TABLES[table], "kind": k, "overrides": rows.get(k, {}),
                "params": count_parameters(model), "batch_size": args.batch_size,
                "steps_per_s": round(args.steps / spent[k], 2),
                "time_ratio_to_scalegmn": round(spent[k] / spent["scalegmn"], 2),
                "threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS"),
            }), flush=True)


if __name__ == "__main__":
    main()
