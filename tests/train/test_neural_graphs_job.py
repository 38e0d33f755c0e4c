"""Whole train jobs with the Neural Graphs baselines (ng_gnn, ng_t): outputs, the checkpoint
(Fourier buffers, PNA degree statistics, input scales) and `scalegmn predict` on it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from scalegmn.cli import main
from scalegmn.train.experiments import TrainJob
from scalegmn.train.job import JobOutputs, run_job

from .conftest import write_job_stores


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return write_job_stores(tmp_path_factory.mktemp("stores"), {"train": 24, "val": 8, "test": 8})


def _job(tmp_path, stores, task, preset, model):
    settings = json.dumps({"task": task, "view": "mnist", "preset": preset, "seed": 0, "model": model,
                           "optim": {"epochs": 2, "batch_size": 8, "warmup_steps": 2}}, sort_keys=True)
    out = JobOutputs(tmp_path / "metrics.json", tmp_path / "history.csv", tmp_path / "best.pt")
    metrics = run_job(TrainJob.from_json(settings), stores, out, resume_path=tmp_path / "last.pt",
                      device="cpu", checkpoint_every_steps=2)
    return metrics, out


@pytest.mark.parametrize("model", [
    {"kind": "ng_gnn", "d_hid": 8, "n_layers": 3, "input_scaling": "rms"},
    {"kind": "ng_t", "d_hid": 8, "n_layers": 2, "n_heads": 2, "input_scaling": "rms"},
])
def test_classification_job_and_predict(tmp_path, stores, model):
    metrics, out = _job(tmp_path, stores, "classification", "mnist_cls/scalegmn", model)
    saved = json.loads(out.metrics.read_text())
    assert saved["value"] == metrics["value"] and saved["steps"] == 6
    pred_csv = tmp_path / "pred.csv"
    assert main(["predict", str(out.checkpoint), str(stores["test"]), "--out", str(pred_csv)]) == 0
    preds = list(csv.DictReader(open(pred_csv)))
    acc = np.mean([int(p["prediction"]) == int(p["label"]) for p in preds])
    assert acc == pytest.approx(saved["selected"]["test"]["accuracy"])  # the checkpoint is the selected model


@pytest.mark.parametrize("model", [
    {"kind": "ng_gnn", "d_hid": 8, "n_layers": 2, "direction": "bidirectional", "fourier_sigma": 0.0},
    {"kind": "ng_t", "d_hid": 8, "n_layers": 2, "n_heads": 2, "attention": "neighbours",
     "direction": "bidirectional", "input_scaling": "rms"},
])
def test_editing_job_and_predict(tmp_path, stores, model):
    _, out = _job(tmp_path, stores, "editing", "mnist_editing/scalegmn", model)
    pred_csv = tmp_path / "edit.csv"
    assert main(["predict", str(out.checkpoint), str(stores["test"]), "--out", str(pred_csv)]) == 0
    rows = list(csv.DictReader(open(pred_csv)))
    mean = np.mean([float(r["edit_mse"]) for r in rows])
    assert mean == pytest.approx(json.loads(out.metrics.read_text())["selected"]["test"]["mse"], rel=1e-5)
