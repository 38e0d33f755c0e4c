"""A whole embedding job from cached stores (outputs, embedding stores, metrics), then
`scalegmn embed` and `scalegmn search` on its checkpoint, in-process and through the installed
console script."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scalegmn.cli import main
from scalegmn.data.cache import load_split
from scalegmn.train.embeddings import read_store
from scalegmn.train.experiments import TrainJob
from scalegmn.train.job import JobOutputs, run_job

from .conftest import write_job_stores

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return write_job_stores(tmp_path_factory.mktemp("stores"), {"train": 24, "val": 8, "test": 8})


@pytest.fixture(scope="module")
def job(tmp_path_factory, stores):
    out_dir = tmp_path_factory.mktemp("job")
    settings = {"task": "embedding", "view": "mnist", "preset": "mnist_cls/scalegmn", "seed": 0,
                "model": {"n_layers": 2, "d_hid": 8, "embed_dim": 6},
                "optim": {"epochs": 2, "batch_size": 8, "warmup_steps": 2, "positive_noise": 0.1}}
    out = JobOutputs(out_dir / "metrics.json", out_dir / "history.csv", out_dir / "best.pt", out_dir / "embeddings")
    metrics = run_job(TrainJob.from_json(json.dumps(settings)), stores, out, resume_path=out_dir / ".resume" / "last.pt",
                      device="cpu")
    return metrics, out


def test_embedding_job_writes_metrics_and_one_store_per_split(job, stores):
    metrics, out = job
    saved = json.loads(out.metrics.read_text())
    assert saved["metric"] == "recall_at_1" and saved["n_outputs"] == 6
    extra = saved["extra_metrics"]
    assert saved["value"] == extra["recall_at_1"] == saved["selected"]["test"]["recall_at_1"]
    assert {"recall_at_5", "recall_at_10", "mrr", "class_recall_at_1", "class_mrr"} <= set(extra)
    assert not any(k.startswith("probe_") for k in extra)  # class labels: no accuracy to predict
    for split in ("train", "val", "test"):
        emb = read_store(out.embeddings / f"{split}.zarr")
        data = load_split(stores[split])
        assert emb.embedding.shape == (data.size, 6)
        assert emb.source == list(data.sources) and emb.attrs["split"] == split
        assert np.allclose(np.linalg.norm(emb.embedding, axis=1), 1.0, atol=1e-5)
        assert np.array_equal(emb.y, data.y.numpy())
    header = next(csv.reader(open(out.history)))
    assert {"val_recall_at_1", "test_mrr", "val_class_recall_at_1"} <= set(header)


def test_probe_metrics_on_accuracy_targets(tmp_path):
    """CNN zoos: the targets are accuracies, so the job fits the zero-shot ridge probe."""
    from scalegmn.data.split_protocol import MemorySplit
    from scalegmn.train.embeddings import probe_metrics
    from scalegmn.weightspace.network import NetworkSpec
    from scalegmn.weightspace.testing import random_network

    spec = NetworkSpec((2, 4, 3), ("relu", "identity"))
    splits, embeddings = {}, {}
    g = torch.Generator().manual_seed(0)
    for name, n in (("train", 40), ("val", 10), ("test", 20)):
        z = torch.randn(n, 3, generator=g, dtype=torch.float64)
        splits[name] = MemorySplit(random_network(spec, (n,), dtype=torch.float32), (z[:, 0] * 0.1 + 0.5).float())
        embeddings[name] = z
    m = probe_metrics(embeddings, splits)
    assert m["probe_r2"] > 0.99 and m["probe_spearman"] > 0.99


def test_scalegmn_embed_reproduces_the_jobs_test_embeddings_and_search_finds_neighbours(job, stores, tmp_path, capsys):
    _, out = job
    store = tmp_path / "mine.zarr"
    assert main(["embed", str(out.checkpoint), str(stores["test"]), "--out", str(store)]) == 0
    mine, theirs = read_store(store), read_store(out.embeddings / "test.zarr")
    assert np.allclose(mine.embedding, theirs.embedding, atol=1e-6)  # the selected model
    capsys.readouterr()

    hits = tmp_path / "hits.csv"
    assert main(["search", str(store), "net3", "--k", "3", "--out", str(hits)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(open(hits)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and "query net3" in printed
    sims = mine.embedding @ mine.embedding[3]
    sims[3] = -np.inf
    assert [r["source"] for r in rows] == [f"net{i}" for i in np.argsort(-sims, kind="stable")[:3]]
    # another store as the queries: each network finds itself at cosine 1, the most similar
    # (a briefly trained encoder may tie two networks to the rounding: a tie can come first)
    assert main(["search", str(store), str(out.embeddings / "test.zarr"), "--k", "8", "--out", str(hits)]) == 0
    rows = list(csv.DictReader(open(hits)))
    assert len(rows) == 64
    for r in rows:
        if r["query"] == r["source"]:
            top = max(float(x["similarity"]) for x in rows if x["query"] == r["query"])
            assert float(r["similarity"]) == pytest.approx(1.0, abs=1e-5) and top <= 1.0 + 1e-5


def test_embed_and_search_errors_are_one_line(job, stores, tmp_path, capsys):
    _, out = job
    assert main(["search", str(out.embeddings / "test.zarr"), "no-such-net"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no-such-net" in err
    assert main(["search", str(stores["test"]), "net1"]) == 2  # a cache store, not embeddings
    assert "scalegmn embed" in capsys.readouterr().err
    assert main(["predict", str(out.checkpoint), str(stores["test"]), "--out", str(tmp_path / "p.csv")]) == 2
    assert "scalegmn embed" in capsys.readouterr().err


def test_embed_and_search_through_the_installed_console_script(job, stores, tmp_path):
    _, out = job
    exe = Path(sys.executable).with_name("scalegmn")  # the console script pip installed
    assert exe.exists(), f"{exe} missing: install the package with pip install -e ."
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's package, whichever is installed
    store = tmp_path / "cli.zarr"
    done = subprocess.run([str(exe), "embed", str(out.checkpoint), str(stores["test"]), "--out", str(store)],
                          capture_output=True, text=True, env=env, check=True)
    assert "wrote 8 embeddings (d=6)" in done.stdout
    done = subprocess.run([str(exe), "search", str(store), "0", "--k", "2"], capture_output=True, text=True,
                          env=env, check=True)
    lines = done.stdout.splitlines()
    assert lines[0] == "query net0" and len(lines) == 3 and "net0" not in "".join(lines[1:])


def test_search_query_order_id_then_row_then_end_of_id(tmp_path, capsys):
    from scalegmn.train.embeddings import write_store

    z = np.eye(4, dtype=np.float32)
    store = write_store(tmp_path / "e.zarr", z, ["zoo#13", "zoo#3", "zoo#23", "x"], None, {})
    capsys.readouterr()
    for query, row in (("zoo#3", 1), ("2", 2), ("#23", 2), ("x", 3)):
        assert main(["search", str(store), query, "--k", "1"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == f"query {['zoo#13', 'zoo#3', 'zoo#23', 'x'][row]}"
    assert main(["search", str(store), "3#"]) == 2  # no id ends with it, not a row
    assert main(["search", str(store), "#", "--k", "0"]) == 2
