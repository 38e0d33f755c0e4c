"""A whole train job from cached stores (outputs, checkpoint) and `scalegmn predict` on it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from scalegmn.cli import main
from scalegmn.data.formats import mnist_inr
from scalegmn.errors import DataError
from scalegmn.execution import ExecutionConfig
from scalegmn.train import loop
from scalegmn.train.checkpoint import load_checkpoint, save_torch
from scalegmn.train.experiments import ExperimentsConfig, TrainJob
from scalegmn.train.job import JobOutputs, run_job
from scalegmn.weightspace.network import unstack

from .conftest import write_job_stores


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return write_job_stores(tmp_path_factory.mktemp("stores"), {"train": 24, "val": 8, "test": 8})


def _job(tmp_path, stores, task, preset, model, job=None):
    settings = json.dumps({"task": task, "view": "mnist", "preset": preset, "seed": 0, "model": model,
                           "optim": {"epochs": 2, "batch_size": 8, "warmup_steps": 2}}, sort_keys=True)
    out = JobOutputs(tmp_path / "metrics.json", tmp_path / "history.csv", tmp_path / "best.pt")
    resume = tmp_path / ".resume" / "last.pt"
    job = job or TrainJob.from_json(settings)
    metrics = run_job(job, stores, out, resume_path=resume, device="cpu", checkpoint_every_steps=2)
    return metrics, out, resume


def test_classification_job_writes_outputs_and_predicts(tmp_path, stores):
    metrics, out, resume = _job(tmp_path, stores, "classification", "mnist_cls/scalegmn",
                                {"kind": "mlp", "d_hid": 8})
    assert not resume.exists()  # deleted after success
    saved = json.loads(out.metrics.read_text())
    assert saved["value"] == metrics["value"] == saved["selected"]["test"]["accuracy"]
    assert saved["steps"] == 6 and saved["device"] == "cpu"
    rows = list(csv.DictReader(open(out.history)))
    assert [int(r["step"]) for r in rows] == [3, 6]

    pred_csv = tmp_path / "pred.csv"
    assert main(["predict", str(out.checkpoint), str(stores["test"]), "--out", str(pred_csv)]) == 0
    preds = list(csv.DictReader(open(pred_csv)))
    assert len(preds) == 8 and preds[0]["source"] == "net0"
    acc = np.mean([int(p["prediction"]) == int(p["label"]) for p in preds])
    assert acc == pytest.approx(saved["selected"]["test"]["accuracy"])  # the selected model
    assert {"p_0", "p_1"} <= set(preds[0])

    # the same networks as a zoo folder in the real MNIST-INR format
    zoo = tmp_path / "mnist-inrs"
    from scalegmn.data.cache import load_split

    test = load_split(stores["test"])
    nets = unstack(test.get(torch.arange(test.size)).net)
    for i, net in enumerate(nets):
        mnist_inr.write_network(zoo, net, split="testing", label=int(test.y[i]), image_id=i)
    zoo_csv = tmp_path / "zoo.csv"
    assert main(["predict", str(out.checkpoint), str(zoo), "--out", str(zoo_csv)]) == 0
    by_source = {mnist_inr.parse_path(r["source"])[2]: r for r in csv.DictReader(open(zoo_csv))}
    for i, p in enumerate(preds):
        assert by_source[i]["prediction"] == p["prediction"]


def test_editing_job_and_predict(tmp_path, stores):
    _, out, _ = _job(tmp_path, stores, "editing", "mnist_editing/scalegmn", {"kind": "mlp", "d_hid": 8})
    pred_csv = tmp_path / "edit.csv"
    assert main(["predict", str(out.checkpoint), str(stores["test"]), "--out", str(pred_csv)]) == 0
    rows = list(csv.DictReader(open(pred_csv)))
    assert len(rows) == 8 and all(float(r["edit_mse"]) >= 0 for r in rows)
    mean = np.mean([float(r["edit_mse"]) for r in rows])
    saved = json.loads(out.metrics.read_text())
    assert mean == pytest.approx(saved["selected"]["test"]["mse"], rel=1e-5)
    # the reference: the unedited test INRs against the dilated images
    from scalegmn.data.cache import load_split
    from scalegmn.train import editing

    test = load_split(stores["test"])
    batch = test.get(torch.arange(test.size))
    target = editing.dilate(editing.source_images(batch.net, test.images, batch.index))
    unedited = editing.per_image_mse(editing.render(batch.net, editing.IMAGE_SHAPE), target).mean()
    assert saved["reference"]["value"] == pytest.approx(float(unedited), rel=1e-5)


def test_predict_rejects_a_file_that_is_not_a_checkpoint(tmp_path, stores, capsys):
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["predict", str(bad), str(stores["test"]), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "checkpoint" in err and "\n" not in err
    with pytest.raises(DataError):
        load_checkpoint(bad)


@pytest.mark.parametrize(("execution", "lean_ran"), [({}, True), ({"memory": "plain", "micro_batch_size": 4}, False)])
def test_a_rows_execution_reaches_the_model_and_the_training_step(tmp_path, stores, monkeypatch, lean_calls,
                                                                  execution, lean_ran):
    config = {"tables": {"t": {
        "task": "classification", "seeds": [0],
        "model": {"n_layers": 2, "d_hid": 8}, "optim": {"epochs": 1, "batch_size": 8, "warmup_steps": 2},
        "columns": {"mnist": {"preset": "mnist_cls/scalegmn"}},
        "rows": {"scalegmn": {"execution": execution}}}}}
    job = ExperimentsConfig.from_mapping(config).job("classification", "mnist", "scalegmn", 0)
    steps = []
    original = loop.optimizer_step

    def recorded(*args, execution, **kw):
        steps.append(execution)
        return original(*args, execution=execution, **kw)

    monkeypatch.setattr(loop, "optimizer_step", recorded)
    _, out, _ = _job(tmp_path, stores, "classification", "mnist_cls/scalegmn", {}, job=job)
    assert steps and set(steps) == {ExecutionConfig(**execution)}
    assert (lean_calls["_ScaleEqHidden"] > 0) == lean_ran
    model, _ = load_checkpoint(out.checkpoint)
    assert model.execution == ExecutionConfig(**execution)


def test_a_checkpoint_written_before_the_execution_section_still_loads_and_predicts(tmp_path, stores):
    _, out, _ = _job(tmp_path, stores, "classification", "mnist_cls/scalegmn", {"kind": "mlp", "d_hid": 8})
    new_csv, old_csv = tmp_path / "new.csv", tmp_path / "old.csv"
    assert main(["predict", str(out.checkpoint), str(stores["test"]), "--out", str(new_csv)]) == 0
    # best.pt as the train rule wrote it before: memory keys inside settings["model"]/["optim"]
    ckpt = torch.load(out.checkpoint, weights_only=True)
    settings = dict(ckpt["settings"])
    assert settings.pop("execution") == {}
    settings["model"] = {**settings["model"], "lean_autograd": False, "lean_min_mb": 512.0, "checkpoint": False}
    settings["optim"] = {**settings["optim"], "micro_batch_size": 4}
    old = tmp_path / "old" / "best.pt"
    save_torch({**ckpt, "settings": settings}, old)

    model, _ = load_checkpoint(old)
    assert model.execution == ExecutionConfig(memory="plain", lean_min_mb=512.0, micro_batch_size=4)
    assert main(["predict", str(old), str(stores["test"]), "--out", str(old_csv)]) == 0
    assert old_csv.read_text() == new_csv.read_text()
