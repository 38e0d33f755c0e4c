"""Training and evaluation from a streamed split (issue 12: splits over
``execution.resident_max_mb`` are read from their stores block by block, never whole).

The resident path is the one of tests/train/test_train.py; here the same tiny splits are written
to stores and trained on through :class:`scalegmn.data.stream.StreamedSplit`: every network once
per epoch, the loss goes down, evaluation gives the resident figures, a killed run resumes to the
same result, a step reads no tensor value, and the job streams exactly the splits over its budget.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from scalegmn.data.cache import CachedSplit, StoreContent, load_split, write_store
from scalegmn.data.stream import StreamedSplit, store_bytes
from scalegmn.models.presets import OptimConfig
from scalegmn.nn.input_scale import LayerScale
from scalegmn.train import loop
from scalegmn.train.experiments import TrainJob
from scalegmn.train.job import JobOutputs, open_splits, run_job
from scalegmn.train.loop import (
    Resume,
    SimulatedKill,
    TrainState,
    _start,
    _train_step,
    check_losses,
    evaluate,
    fit,
)
from scalegmn.weightspace.network import Network

from .conftest import FlatModel, make_splits, write_job_stores
from .test_no_sync import no_host_reads

BLOCK = 12  # networks per streamed block: not a multiple of the batch, so blocks' remainders carry over


def _stores(tmp_path, task: str) -> dict[str, object]:
    """The conftest's in-memory splits of ``task`` written as cache stores."""
    out = {}
    for name, s in make_splits(task).items():
        n = s.size
        content = StoreContent([s.net], s.y.numpy(), np.array(["relu"] * n), np.array(list(s.sources)), np.arange(n))
        out[name] = write_store(tmp_path / f"{name}.zarr", content, {"n_classes": s.n_classes} if s.n_classes else {})
    return out


def _streamed(stores) -> dict[str, StreamedSplit]:
    return {name: StreamedSplit(path, block_networks=BLOCK) for name, path in stores.items()}


def _model(task: str, splits, seed: int = 0) -> FlatModel:
    torch.manual_seed(seed)
    return FlatModel(splits["train"].spec, 4 if task == "classification" else 1)


def test_streamed_training_sees_every_network_once_an_epoch_and_learns(tmp_path, monkeypatch):
    task = "generalization"
    stores = _stores(tmp_path, task)
    resident, streamed = {n: load_split(p) for n, p in stores.items()}, _streamed(stores)
    # The settings and thresholds of test_train.test_training_reduces_the_loss (resident path).
    optim = OptimConfig(batch_size=8, lr=1e-2, weight_decay=0.0, epochs=8, warmup_steps=1)
    seen = []
    original = loop._next_streamed
    monkeypatch.setattr(loop, "_next_streamed", lambda run, state: seen.append(b := original(run, state)) or b)

    a = fit(_model(task, resident), optim, task, resident, seed=0)
    assert seen == []  # control: the resident split never goes through the stream
    b = fit(_model(task, streamed), optim, task, streamed, seed=0)

    n, per_epoch = streamed["train"].size, -(-48 // 8)
    assert a.steps == b.steps == 8 * per_epoch and len(seen) == b.steps
    assert [len(r) for r in (a.history, b.history)] == [8, 8]  # one evaluation per epoch, both ways
    orders = [torch.cat([x.index for x in seen[e * per_epoch:(e + 1) * per_epoch]]) for e in range(8)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(n))  # each network once per epoch
    assert all(x.size == 8 for x in seen)  # full batches across block boundaries
    assert len({tuple(o.tolist()) for o in orders}) == 8 and orders[0].tolist() != list(range(n))  # shuffled
    for result in (a, b):
        assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
        assert result.selected["val"]["kendall_tau"] > 0.3
    assert a.history != b.history  # control: another batch order, another (equally valid) run


@pytest.mark.parametrize("task", ["classification", "embedding"])
def test_evaluating_a_streamed_split_gives_the_resident_figures(tmp_path, task):
    stores = _stores(tmp_path, "classification")
    resident, streamed = load_split(stores["val"]), StreamedSplit(stores["val"], block_networks=5)
    model = _model("classification", {"train": resident})  # its 4 outputs embed, for the embedding task
    for batch_size in (3, 16, 40):
        assert evaluate(model, streamed, task, batch_size, torch.device("cpu")) == \
            evaluate(model, resident, task, batch_size, torch.device("cpu"))


@pytest.mark.parametrize(("stop", "resumed_at"), [(10, 8), (12, 12)])
def test_a_killed_streamed_run_resumes_to_the_same_result(tmp_path, stop, resumed_at):
    """Checkpoints every 4 steps and at each epoch's end (6 steps for 48 networks): killed at
    step 10 the run resumes mid-epoch (replaying 16 networks, past a block boundary), at 12 on
    an epoch boundary."""
    task, optim = "classification", OptimConfig(batch_size=8, lr=1e-2, weight_decay=1e-3, epochs=3, warmup_steps=5)
    stores = _stores(tmp_path, task)
    reference = fit(_model(task, _streamed(stores), 3), optim, task, _streamed(stores), seed=3)
    resume = tmp_path / ".resume" / "last.pt"
    with pytest.raises(SimulatedKill):
        fit(_model(task, _streamed(stores), 3), optim, task, _streamed(stores), seed=3,
            resume=Resume(resume, every_steps=4, fingerprint="job", stop_after_steps=stop))
    torch.manual_seed(12345)  # whatever the global RNG does in between must not matter
    resumed = fit(_model(task, _streamed(stores), 3), optim, task, _streamed(stores), seed=3,
                  resume=Resume(resume, every_steps=4, fingerprint="job"))
    assert resumed.resumed_from_step == resumed_at
    assert resumed.history == reference.history and resumed.selected == reference.selected
    for k, v in reference.best_state.items():
        assert torch.equal(v, resumed.best_state[k]), k


def test_a_streamed_training_step_reads_no_tensor_value(tmp_path):
    """The guard of tests/train/test_no_sync.py over steps that cross a block boundary (the
    background reader runs meanwhile); the first step of an epoch draws the block order."""
    task = "classification"
    splits = _streamed(_stores(tmp_path, task))
    optim = OptimConfig(batch_size=8, lr=1e-2, weight_decay=0.0, epochs=2, warmup_steps=2)
    run = _start(_model(task, splits), optim, task, splits, seed=0, device=torch.device("cpu"),
                 execution=loop.DEFAULT_EXECUTION, on_eval=None)
    state = TrainState()
    _train_step(run, state)
    with no_host_reads():
        for _ in range(3):  # 32 networks in all: the steps cross blocks of 12
            _train_step(run, state)
    assert state.pos == 32 and len(run.pending) == 4
    check_losses(run, state)
    loop._close_stream(run)


def test_the_job_streams_exactly_the_splits_over_its_budget(tmp_path):
    stores = write_job_stores(tmp_path, {"train": 48, "val": 8, "test": 8})
    train_mb, val_mb = store_bytes(stores["train"]) / 2**20, store_bytes(stores["val"]) / 2**20
    splits = open_splits(stores, torch.device("cpu"), (train_mb + val_mb) / 2)
    assert isinstance(splits["train"], StreamedSplit)
    assert isinstance(splits["val"], CachedSplit) and isinstance(splits["test"], CachedSplit)  # control: under it
    assert all(isinstance(s, CachedSplit) for s in open_splits(stores, torch.device("cpu"), None).values())
    assert all(isinstance(s, CachedSplit) for s in open_splits(stores, torch.device("cpu"), train_mb).values())
    streamed, resident = splits["train"], load_split(stores["train"])
    assert torch.equal(streamed.y, resident.y) and streamed.sources == resident.sources
    assert torch.equal(streamed.images, resident.images) and streamed.n_classes == resident.n_classes == 2


def test_layer_rms_of_a_streamed_split_is_the_resident_calibration(tmp_path):
    stores = write_job_stores(tmp_path, {"train": 30})
    resident = load_split(stores["train"])
    a, b = LayerScale(resident.spec.n_layers), LayerScale(resident.spec.n_layers)
    a.calibrate(Network(resident.spec, resident.weights[0], resident.biases[0]))
    b.set_scales(*StreamedSplit(stores["train"], block_networks=7).layer_rms())
    # float64 sums in another order: equal to ~1e-15 relative
    assert torch.allclose(a.weight_scale, b.weight_scale, rtol=1e-12, atol=0)
    assert torch.allclose(a.bias_scale, b.bias_scale, rtol=1e-12, atol=0)
    assert not torch.allclose(a.weight_scale, torch.ones_like(a.weight_scale))  # control: not the identity


@pytest.mark.parametrize("preset", ["mnist_cls/scalegmn"])
def test_a_job_over_its_budget_trains_from_the_stream_end_to_end(tmp_path, preset, caplog):
    stores = write_job_stores(tmp_path, {"train": 24, "val": 8, "test": 8})
    settings = {"task": "classification", "view": "mnist", "preset": preset, "seed": 0,
                "model": {"d_hid": 8, "n_layers": 1, "input_scaling": "rms"},
                "optim": {"epochs": 2, "batch_size": 8, "warmup_steps": 2}}

    def job(budget):
        out = JobOutputs(tmp_path / f"{budget}" / "metrics.json", tmp_path / f"{budget}" / "history.csv",
                         tmp_path / f"{budget}" / "best.pt")
        with caplog.at_level(logging.INFO, logger="scalegmn.train.job"):
            caplog.clear()
            metrics = run_job(TrainJob.from_json(json.dumps({**settings, "execution": {"resident_max_mb": budget}})),
                              stores, out, resume_path=tmp_path / f"{budget}" / "last.pt", device="cpu")
        return metrics, [r.getMessage() for r in caplog.records if "streamed from its store" in r.getMessage()]

    streamed, logged = job(0.0)
    assert len(logged) == 3 and streamed["steps"] == 6 and streamed["n_train"] == 24
    resident, logged = job(1024.0)
    assert logged == [] and resident["steps"] == 6  # control: under the budget nothing streams
    assert 0.0 <= streamed["value"] <= 1.0
