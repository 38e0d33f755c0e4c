"""Bring your own zoo, end to end (issue 13's bar): `scalegmn init-dataset` on a folder of 40
MLP state dicts of a randomly drawn layout, then `snakemake results/<table>` with the block it
wrote as a --configfile builds the table."""

from __future__ import annotations

import csv
import json
import random

import pytest
import torch
import yaml

from scalegmn.cli import main
from scalegmn.data.formats import generic

from .test_rerun import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow  # ~1 min on 2 shared cores: ingest, splits, cache, 2 train jobs, table

TINY = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())


def write_random_zoo(root, n=40, seed=0):
    """n MLPs of one randomly drawn layout (2-4 layers, widths 3-12), relu, labels 0/1, key names
    as an nn.Sequential writes them."""
    rng = random.Random(seed)
    layout = [rng.randint(3, 12) for _ in range(rng.randint(3, 5))]
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        sd = {}
        for k, (a, b) in enumerate(zip(layout[:-1], layout[1:], strict=True)):
            sd[f"{2 * k}.weight"] = torch.randn(b, a, generator=g) / a ** 0.5
            sd[f"{2 * k}.bias"] = torch.randn(b, generator=g) * 0.1
        (root / "nets").mkdir(parents=True, exist_ok=True)
        torch.save(sd, root / "nets" / f"mlp{i:02d}.pt")
        rows.append({"file": f"nets/mlp{i:02d}.pt", "label": i % 2})
    generic.write_manifest(root, rows)
    return layout


def test_init_dataset_then_snakemake_builds_the_table(tmp_path):
    layout = write_random_zoo(tmp_path / "zoo")
    (tmp_path / "wf").mkdir()
    work = copy_workflow(tmp_path / "wf", TINY)
    assert main(["init-dataset", str(tmp_path / "zoo"), "--name", "myzoo", "--out", str(work / "myzoo.yaml")]) == 0
    res = snakemake(work, "results/myzoo", "--configfile", "myzoo.yaml")
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    with open(work / "results" / "myzoo" / "myzoo.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == {"MLP", "ScaleGMN"} and all(r["dataset"] == "myzoo" for r in rows)
    assert all(0.0 <= float(r["mean"]) <= 100.0 and r["n_seeds"] == "1" for r in rows)
    splits = json.loads((work / "results" / "data" / "myzoo" / "splits.json").read_text())
    assert splits["counts"]["train"] + splits["counts"]["val"] + splits["counts"]["test"] == 40
    metrics = json.loads((work / "results/train/classification/myzoo/scalegmn/seed0/metrics.json").read_text())
    assert metrics["n_train"] == splits["counts"]["train"] and metrics["settings"]["view"] == "myzoo"
    store = (work / "results" / "cache" / "myzoo" / "train.zarr")
    assert store.is_dir() and len(layout) >= 3


def test_the_standin_zoo_exported_as_generic_gives_the_same_table(tmp_path):
    """The MNIST stand-in through its own format and, exported, through the generic format:
    same rows, same splits, so the same cells (training is seeded)."""
    mnist = {**TINY, "datasets": {"mnist_inr": TINY["datasets"]["mnist_inr"]}, "views": {"mnist": {"dataset": "mnist_inr"}}}
    table = {**TINY["tables"]["table1"], "optim": {"epochs": 2, "batch_size": 8, "warmup_steps": 2, "lr": 0.003},
             "columns": {"mnist": TINY["tables"]["table1"]["columns"]["mnist"]}}
    (tmp_path / "wf").mkdir()
    work = copy_workflow(tmp_path / "wf", {**mnist, "tables": {"table1": table}})
    res = snakemake(work, "results/data/mnist_inr/splits.json")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    data = work / "results" / "data" / "mnist_inr"
    generic.export(data / "weights.h5", data / "splits.json", tmp_path / "exported")
    both = {
        "datasets": {**mnist["datasets"], "mnist_generic": {"format": "generic", "source": "local",
                                                            "local": {"path": str(tmp_path / "exported")}}},
        "views": {**mnist["views"], "mnist_generic": {"dataset": "mnist_generic"}},
        "tables": {"table1": {**table, "columns": {**table["columns"], "mnist_generic": {
            "label": "MNIST (generic)", "preset": "mnist_cls/scalegmn", "real": False}}}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump({**TINY, **both}, sort_keys=False))
    res = snakemake(work, "results/table1")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    with open(work / "results" / "table1" / "table1.csv") as f:
        cells = {(r["model"], r["dataset"]): (r["mean"], r["std"], r["values"]) for r in csv.DictReader(f)}
    for model in ("MLP", "ScaleGMN"):
        assert cells[(model, "MNIST")] == cells[(model, "MNIST (generic)")], cells
    splits = [json.loads((work / "results" / "data" / d / "splits.json").read_text()) for d in ("mnist_inr", "mnist_generic")]
    assert all(splits[0][k] == splits[1][k] for k in ("train", "val", "test"))
