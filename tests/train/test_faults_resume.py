"""Faults around training files: a corrupt resume file, leftovers of the resume machinery, and
checkpoints that would run code when loaded (issue 11, items 3, 5 and 14)."""

from __future__ import annotations

import json
import logging
import os
import pathlib

import pytest
import torch

from scalegmn.cli import main
from scalegmn.errors import DataError
from scalegmn.models.presets import OptimConfig
from scalegmn.train.checkpoint import load_checkpoint
from scalegmn.train.experiments import TrainJob
from scalegmn.train.job import JobOutputs, run_job
from scalegmn.train.loop import Resume, SimulatedKill, fit

from .conftest import write_job_stores

LOOP = OptimConfig(batch_size=8, lr=1e-2, weight_decay=1e-3, epochs=3, warmup_steps=5)


def _kill_then_corrupt(resume, splits, model_for, corrupt):
    with pytest.raises(SimulatedKill):
        fit(model_for("classification", splits, seed=3), LOOP, "classification", splits, seed=3,
            resume=Resume(resume, every_steps=2, fingerprint="job", stop_after_steps=5))
    assert resume.exists()
    corrupt(resume)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "corrupt",
    [
        _truncate,  # a write cut short (full disk): torch's zip reader fails
        lambda p: p.write_bytes(b""),  # an empty file
        lambda p: torch.save({"fingerprint": "job", "model": {}, "loop": {}}, p),  # readable, wrong content
    ],
    ids=["truncated", "empty", "wrong-content"],
)
def test_corrupt_resume_file_is_set_aside_and_training_restarts_from_step_0(
    corrupt, tmp_path, splits_for, model_for, caplog
):
    splits = splits_for("classification")
    reference = fit(model_for("classification", splits, seed=3), LOOP, "classification", splits, seed=3)
    resume = tmp_path / ".resume" / "last.pt"
    _kill_then_corrupt(resume, splits, model_for, corrupt)

    with caplog.at_level(logging.WARNING, logger="scalegmn.train.checkpoint"):
        result = fit(model_for("classification", splits, seed=3), LOOP, "classification", splits, seed=3,
                     resume=Resume(resume, every_steps=2, fingerprint="job"))

    # restarted from step 0, and nothing of the failed attempt leaked into the run
    assert result.resumed_from_step is None
    assert result.history == reference.history
    assert result.selected == reference.selected
    for k, v in reference.best_state.items():
        assert torch.equal(v, result.best_state[k]), k
    set_aside = sorted(resume.parent.glob("last.pt.corrupt-*"))
    assert len(set_aside) == 1
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "\n" not in warning[0]
    assert str(resume) in warning[0] and str(set_aside[0]) in warning[0]
    assert "step 0" in warning[0]


def test_a_retry_after_a_corrupt_resume_file_does_not_meet_it_again(tmp_path, splits_for, model_for, caplog):
    """The file is moved out of the way once: the next attempt resumes from the new checkpoint."""
    splits = splits_for("classification")
    resume = tmp_path / ".resume" / "last.pt"
    _kill_then_corrupt(resume, splits, model_for, _truncate)
    with pytest.raises(SimulatedKill):  # the restarted run is killed again ...
        fit(model_for("classification", splits, seed=3), LOOP, "classification", splits, seed=3,
            resume=Resume(resume, every_steps=2, fingerprint="job", stop_after_steps=4))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scalegmn.train.checkpoint"):  # ... and resumes normally
        again = fit(model_for("classification", splits, seed=3), LOOP, "classification", splits, seed=3,
                    resume=Resume(resume, every_steps=2, fingerprint="job"))
    assert again.resumed_from_step == 4
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(list(resume.parent.glob("last.pt.corrupt-*"))) == 1


# --- a whole job: the .resume folder ------------------------------------------------------------


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return write_job_stores(tmp_path_factory.mktemp("stores"), {"train": 16, "val": 8, "test": 8})


def _run(job_dir, stores, **env):
    settings = json.dumps({"task": "classification", "view": "mnist", "preset": "mnist_cls/scalegmn", "seed": 0,
                           "model": {"kind": "mlp", "d_hid": 8},
                           "optim": {"epochs": 2, "batch_size": 8, "warmup_steps": 2}}, sort_keys=True)
    out = JobOutputs(job_dir / "metrics.json", job_dir / "history.csv", job_dir / "best.pt")
    return run_job(TrainJob.from_json(settings), stores, out, resume_path=job_dir / ".resume" / "last.pt", device="cpu",
                   checkpoint_every_steps=1), out


def test_a_finished_job_leaves_no_resume_folder(tmp_path, stores, monkeypatch):
    job = tmp_path / "seed0"
    monkeypatch.setenv("SCALEGMN_STOP_AFTER_STEPS", "2")
    with pytest.raises(SimulatedKill):
        _run(job, stores)
    (job / ".resume" / ".last.pt.tmp4242").write_bytes(b"half a save of an older version's killed job")
    killed_save = job / ".resume" / ".last.pt.k1ll3d.tmp"  # what atomic_write leaves when killed
    killed_save.mkdir()
    (killed_save / "last.pt").write_bytes(b"half a save of a killed job")
    monkeypatch.delenv("SCALEGMN_STOP_AFTER_STEPS")
    metrics, _ = _run(job, stores)
    assert metrics["resumed_from_step"] == 2
    assert not (job / ".resume").exists()
    assert sorted(p.name for p in job.iterdir()) == ["best.pt", "history.csv", "metrics.json"]


def test_a_set_aside_resume_file_is_kept_and_named_in_the_job_log(tmp_path, stores, monkeypatch, caplog):
    job = tmp_path / "seed0"
    monkeypatch.setenv("SCALEGMN_STOP_AFTER_STEPS", "2")
    with pytest.raises(SimulatedKill):
        _run(job, stores)
    _truncate(job / ".resume" / "last.pt")
    monkeypatch.delenv("SCALEGMN_STOP_AFTER_STEPS")
    with caplog.at_level(logging.WARNING):
        metrics, _ = _run(job, stores)
    assert metrics["resumed_from_step"] is None
    kept = list((job / ".resume").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith("last.pt.corrupt-")
    assert any(kept[0].name in r.getMessage() for r in caplog.records)


# --- checkpoints that would run code ------------------------------------------------------------


class _RunsCode:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for any code a pickle can run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _evil_checkpoint(tmp_path, stores):
    _, out = _run(tmp_path / "job", stores)
    ckpt = torch.load(out.checkpoint, weights_only=True)
    marker = tmp_path / "code-ran"
    ckpt["settings"] = {**ckpt["settings"], "hook": _RunsCode(marker)}
    evil = tmp_path / "shared" / "best.pt"
    evil.parent.mkdir()
    torch.save(ckpt, evil)
    return evil, marker


def test_a_checkpoint_holding_a_pickled_callable_is_refused(tmp_path, stores):
    evil, marker = _evil_checkpoint(tmp_path, stores)
    with pytest.raises(DataError) as err:
        load_checkpoint(evil)
    assert not marker.exists()  # nothing ran
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(evil))
    assert "refused" in msg and "allow-list (getattr)" in msg  # names what it held (Path.touch)


def test_predict_on_a_checkpoint_holding_a_pickled_callable_fails_with_one_line(tmp_path, stores, capsys):
    evil, marker = _evil_checkpoint(tmp_path, stores)
    rc = main(["predict", str(evil), str(stores["test"]), "--out", str(tmp_path / "p.csv")])
    assert rc == 2 and not marker.exists()
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(evil) in err
    assert not (tmp_path / "p.csv").exists()


def test_a_checkpoint_of_the_train_rule_loads_with_the_allow_list(tmp_path, stores):
    """Control: the weights-only load accepts what the train rule writes."""
    _, out = _run(tmp_path / "job", stores)
    model, ckpt = load_checkpoint(out.checkpoint)
    assert ckpt["format"] == "scalegmn-checkpoint/1" and not model.training
    assert os.path.exists(out.checkpoint)
