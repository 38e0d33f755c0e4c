"""Table 5 in the DAG: the shipped config plans it, and a tiny embedding table runs end to end
(train_embedding jobs with their embedding stores, then the table with its figures)."""

from __future__ import annotations

import pytest
import yaml

from scalegmn.train.embeddings import read_store

from .test_rerun import REPO, copy_workflow, planned_jobs, snakemake

TINY = """
datasets:
  mnist_inr: {source: standin, standin: {size: tiny, seed: 0}, canonicalize: none}
views:
  mnist: {dataset: mnist_inr}
training: {device: cpu, checkpoint_every_steps: 5}
tables:
  table5:
    title: "tiny embeddings"
    task: embedding
    seeds: [0]
    model: {n_layers: 2, d_hid: 8, embed_dim: 8}
    optim: {epochs: null, max_steps: 6, eval_every_steps: 3, batch_size: 8, warmup_steps: 2}
    columns:
      mnist: {label: MNIST-INR, preset: mnist_cls/scalegmn}
    rows:
      mlp: {label: MLP, model: {kind: mlp}}
      scalegmn: {label: ScaleGMN}
"""


def test_shipped_config_plans_table5(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    wd = copy_workflow(tmp_path, config)
    jobs = planned_jobs(wd, "results/table5")
    # 2 columns x 4 rows x 3 seeds, each a train_embedding job; the data stages of both zoos
    assert jobs["train_embedding"] == 24 and jobs["table"] == 1 and "train" not in jobs
    assert jobs["build_cache"] == 2


@pytest.mark.slow
def test_tiny_embedding_table_runs_end_to_end(tmp_path):
    wd = copy_workflow(tmp_path, yaml.safe_load(TINY))
    res = snakemake(wd, "results/table5")
    assert res.returncode == 0, res.stderr[-5000:]
    table = wd / "results" / "table5"
    md = (table / "table5.md").read_text()
    assert "test Recall@1" in md and "### instance MRR" in md and "same-class Recall@1" in md
    assert sorted(p.name for p in (table / "figures").iterdir() if p.suffix == ".png") == [
        "curves_mnist.png", "embeddings_pca.png", "retrieval_mnist.png", "table5_bars.png"]
    emb = read_store(wd / "results" / "train" / "embedding" / "mnist" / "scalegmn" / "seed0" / "embeddings" / "test.zarr")
    assert emb.size == 8 and emb.embedding.shape[1] == 8 and emb.source[0].endswith(".pth")
    assert planned_jobs(wd, "results/table5") == {}
