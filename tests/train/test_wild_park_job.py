"""A train job on CNN Wild Park stores (networks of many architectures): the model is built for
the splits' ZooSpec, its checkpoint reloads, and ``scalegmn predict`` reads a Wild Park folder
with it."""

from __future__ import annotations

import csv
import json

import pytest

from scalegmn.cli import main
from scalegmn.data.cache import build_view_stores
from scalegmn.data.canonicalize import canonicalize_file
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.splits import make_splits_file
from scalegmn.data.standins.zoos import build_standin
from scalegmn.train.checkpoint import load_checkpoint
from scalegmn.train.experiments import TrainJob
from scalegmn.train.job import JobOutputs, run_job
from scalegmn.weightspace.graph import ZooSpec


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wp")
    zoo = tmp / "cnn_wild_park"
    build_standin("cnn_wild_park", zoo, size="tiny", seed=0)
    ingest_dataset(zoo, tmp / "weights.h5", tmp / "quarantine.tsv", dataset="cnn_wild_park", fmt="wild_park")
    make_splits_file(tmp / "weights.h5", tmp / "splits.json")
    canonicalize_file(tmp / "weights.h5", tmp / "canonical.h5", tmp / "canonical.json", mode="none")
    stores = {s: tmp / f"{s}.zarr" for s in ("train", "val", "test")}
    build_view_stores(tmp / "canonical.h5", tmp / "splits.json", stores,
                      view={"name": "wild_park", "dataset": "cnn_wild_park"}, provenance={})
    return zoo, stores


@pytest.mark.parametrize("model", [{"kind": "scalegmn", "symmetry": "hetero"}, {"kind": "gmn"},
                                   {"kind": "statnn"}])
def test_job_on_mixed_architectures_trains_reloads_and_predicts(tmp_path, park, model):
    zoo, stores = park
    settings = json.dumps({"task": "generalization", "view": "wild_park", "preset": "cifar10/scalegmn_hetero",
                           "seed": 0, "model": {**model, "d_hid": 8, "n_layers": 2, "input_scaling": "rms"},
                           "optim": {"epochs": 2, "batch_size": 4, "warmup_steps": 2}}, sort_keys=True)
    out = JobOutputs(tmp_path / "metrics.json", tmp_path / "history.csv", tmp_path / "best.pt")
    metrics = run_job(TrainJob.from_json(settings), stores, out, resume_path=tmp_path / ".resume" / "last.pt",
                      device="cpu", checkpoint_every_steps=2)
    assert "kendall_tau" in metrics["selected"]["test"]
    loaded, ckpt = load_checkpoint(out.checkpoint)
    if model["kind"] != "statnn":
        assert loaded.zoo == ZooSpec(3, 10, 6, (7, 7)) and "zoo" in ckpt["spec"]
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(out.checkpoint), str(zoo), "--out", str(pred)]) == 0
    rows = list(csv.DictReader(open(pred)))
    assert len(rows) == 18 and all(r["source"] for r in rows)
