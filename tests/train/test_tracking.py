"""Experiment tracking (scalegmn/train/tracking.py): a whole train job logs each evaluation to
TensorBoard, wandb (offline) and MLflow (file store), the same numbers as history.csv; each test
is skipped when its optional package is absent."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys

import pytest

from scalegmn.errors import ConfigError
from scalegmn.train.experiments import TrainingConfig, TrainJob
from scalegmn.train.job import JobOutputs, run_job
from scalegmn.train.tracking import Tracker

from .conftest import write_job_stores


def _needs(module: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} is not installed")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return write_job_stores(tmp_path_factory.mktemp("stores"), {"train": 16, "val": 8, "test": 8})


def _run(tmp_path, stores, loggers):
    job = TrainJob.from_json(json.dumps({"task": "classification", "view": "mnist", "preset": "mnist_cls/scalegmn",
                                         "seed": 0, "model": {"n_layers": 1, "d_hid": 8},
                                         "optim": {"epochs": 2, "batch_size": 8, "warmup_steps": 2}}))
    seed_dir = tmp_path / "train" / "classification" / "mnist" / "scalegmn" / "seed0"
    seed_dir.mkdir(parents=True)
    out = JobOutputs(seed_dir / "metrics.json", seed_dir / "history.csv", seed_dir / "best.pt")
    metrics = run_job(job, stores, out, resume_path=seed_dir / ".resume" / "last.pt", device="cpu",
                      loggers=loggers, tracking_dir=tmp_path / "tracking")
    with open(out.history) as f:
        history = list(csv.DictReader(f))
    return metrics, history


def test_csv_only_imports_no_tracker_and_writes_no_tracking_files(tmp_path, stores):
    before = {m for m in ("wandb", "mlflow", "torch.utils.tensorboard") if m in sys.modules}
    metrics, history = _run(tmp_path, stores, ("csv",))
    assert len(history) == 2 and metrics["value"] == pytest.approx(
        float(next(r for r in reversed(history) if r["selected"] == "True")["test_accuracy"]))
    assert not (tmp_path / "tracking").exists()
    assert {m for m in ("wandb", "mlflow", "torch.utils.tensorboard") if m in sys.modules} == before


@_needs("tensorboard")
def test_tensorboard_gets_every_evaluation(tmp_path, stores):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics, history = _run(tmp_path, stores, ("csv", "tensorboard"))
    events = EventAccumulator(str(tmp_path / "tracking" / "tensorboard" / "classification/mnist/scalegmn/seed0"))
    events.Reload()
    val = events.Scalars("val_accuracy")
    assert [e.step for e in val] == [int(r["step"]) for r in history]
    assert [e.value for e in val] == pytest.approx([float(r["val_accuracy"]) for r in history])
    assert events.Scalars("final/test_accuracy")[0].value == pytest.approx(metrics["value"])


@_needs("wandb")
def test_wandb_offline_run_is_written(tmp_path, stores, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the default is offline: no network, no account
    monkeypatch.setenv("WANDB_SILENT", "true")
    _run(tmp_path, stores, ("csv", "wandb"))
    runs = list((tmp_path / "tracking" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), runs


@_needs("mlflow")
def test_mlflow_file_store_holds_the_history(tmp_path, stores, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    metrics, history = _run(tmp_path, stores, ("csv", "mlflow"))
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "tracking" / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("scalegmn").experiment_id])
    assert run.data.tags["mlflow.runName"] == "classification/mnist/scalegmn/seed0"
    assert run.data.params["preset"] == "mnist_cls/scalegmn"
    steps = client.get_metric_history(run.info.run_id, "val_accuracy")
    logged = sorted((m.step, m.value) for m in steps)
    assert [s for s, _ in logged] == [int(r["step"]) for r in history]
    assert [v for _, v in logged] == pytest.approx([float(r["val_accuracy"]) for r in history])
    assert run.data.metrics["final_test_accuracy"] == pytest.approx(metrics["value"])


def test_an_unknown_or_unavailable_logger_is_a_one_line_config_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown logger 'tensorbord'"):
        TrainingConfig.from_mapping("training", {"loggers": ["csv", "tensorbord"]})
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(ConfigError, match="needs the package wandb") as err:
        Tracker(("wandb",), tmp_path, "run", {})
    assert err.value.key == "training.loggers" and "\n" not in str(err.value)
