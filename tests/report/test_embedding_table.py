"""Table 5's assembly: every embedding metric as its own Markdown table and CSV rows, no paper
columns; its figures (PCA projection, INR retrieval examples) from embedding stores."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from scalegmn.data.cache import StoreContent
from scalegmn.data.cache import write_store as write_cache_store
from scalegmn.report.embedding_figure import nearest, pca_2d, table_figures
from scalegmn.report.tables import write_table
from scalegmn.train.embeddings import write_store
from scalegmn.train.experiments import TableConfig
from scalegmn.weightspace.network import NetworkSpec, dws_siren_spec
from scalegmn.weightspace.testing import random_network

TABLE = {
    "title": "Embeddings",
    "task": "embedding",
    "seeds": [0, 1],
    "columns": {
        "mnist": {"label": "MNIST-INR", "preset": "mnist_cls/scalegmn"},
        "cifar10_gs_relu": {"label": "CIFAR-10-GS", "preset": "cifar10/scalegmn_relu"},
    },
    "rows": {"mlp": {"label": "MLP", "model": {"kind": "mlp"}}, "scalegmn": {"label": "ScaleGMN"}},
}


def _metrics(view: str, model: str, seed: int) -> dict:
    r1 = {"mlp": 0.1, "scalegmn": 0.9}[model] + 0.02 * seed
    extra = {"recall_at_1": r1, "recall_at_5": r1, "recall_at_10": 1.0, "mrr": r1}
    if view == "mnist":
        extra.update(class_recall_at_1=0.2, class_mrr=0.3)
    else:
        extra.update(probe_r2=0.4, probe_mse=0.01, probe_spearman=0.6, probe_alpha=1.0)
    return {"value": r1, "metric": "recall_at_1", "extra_metrics": extra}


def test_embedding_table_shows_every_metric(tmp_path):
    table = TableConfig.from_mapping("tables.table5", "table5", TABLE)
    metrics, history = {}, {}
    for c in table.columns:
        for r in table.rows:
            for s in table.seeds:
                d = tmp_path / c.view / r.key / f"seed{s}"
                d.mkdir(parents=True)
                (d / "metrics.json").write_text(json.dumps(_metrics(c.view, r.key, s)))
                (d / "history.csv").write_text("step,val_recall_at_1,test_recall_at_1,selected\n50,0.5,0.5,True\n")
                metrics[(c.view, r.key, s)] = d / "metrics.json"
                history[(c.view, r.key, s)] = d / "history.csv"
    out = tmp_path / "table5"
    write_table(table, metrics, history, out)
    md = (out / "table5.md").read_text()
    assert "paper:" not in md and "†" not in md  # the paper has no embedding numbers
    assert "| ScaleGMN | 91.00 ± 1.41 | 91.00 ± 1.41 |" in md  # Recall@1 in %, mean ± std
    assert "### zero-shot accuracy R^2 (ridge probe), higher is better" in md
    assert "| MLP | - | 0.400 ± 0.000 |" in md  # no probe on the INR column
    rows = list(csv.DictReader(open(out / "table5.csv")))
    spearman = [r for r in rows if r["metric"].startswith("zero-shot accuracy Spearman")]
    assert len(spearman) == 2 and float(spearman[0]["mean"]) == pytest.approx(0.6)
    assert not any("alpha" in r["metric"] for r in rows)


def _embedding_stores(tmp_path, table):
    """Test cache stores (INRs with classes, CNNs with accuracies) and seed-0 embedding folders."""
    g = torch.Generator().manual_seed(0)
    caches, dirs, jobs = [], [], []
    for c in table.columns:
        inr = c.view == "mnist"
        spec = dws_siren_spec() if inr else NetworkSpec((2, 4, 3), ("relu", "identity"))
        net = random_network(spec, (12,), dtype=torch.float32)
        y = np.arange(12) % 3 if inr else np.linspace(0.1, 0.9, 12).astype(np.float32)
        images = (np.zeros((12, 28, 28), np.uint8) if inr else None)
        caches.append(write_cache_store(tmp_path / c.view / "test.zarr", StoreContent(
            [net], y, np.array(["sine" if inr else "relu"] * 12), np.array([f"n{i}" for i in range(12)]),
            np.arange(12), images), {"split": "test", "n_classes": 3 if inr else None}))
        for r in table.rows:
            d = tmp_path / "emb" / c.view / r.key
            z = torch.nn.functional.normalize(torch.randn(12, 4, generator=g), dim=-1).numpy()
            write_store(d / "test.zarr", z, [f"n{i}" for i in range(12)], y, {})
            dirs.append(str(d))
            jobs.append((c.view, r.key, 0))
    return jobs, dirs, [str(p) for p in caches]


def test_embedding_figures_draw(tmp_path):
    table = TableConfig.from_mapping("tables.table5", "table5", {**TABLE, "seeds": [0]})
    jobs, dirs, caches = _embedding_stores(tmp_path, table)
    figures = table_figures(table, jobs, dirs, caches)
    assert sorted(figures) == ["embeddings_pca.png", "retrieval_mnist.png"]  # retrieval: INR columns only
    for name, draw in figures.items():
        draw(tmp_path / name)
        assert (tmp_path / name).stat().st_size > 1000


def test_pca_and_nearest():
    """Points on a plane in 3-D: the 2-D projection keeps every pairwise distance."""
    rng = np.random.default_rng(0)
    plane = np.c_[rng.normal(size=(6, 2)), np.zeros(6)]
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    xy = pca_2d(plane @ rotation)
    dist = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)  # noqa: E731
    assert np.allclose(dist(xy), dist(plane))
    z = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert nearest(z, 0, 2) == [1, 2]  # itself left out, then by cosine
