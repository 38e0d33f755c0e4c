"""The training loop: selection as the paper, exact resume after a kill, all three tasks."""

from __future__ import annotations

import math

import pytest
import torch

from scalegmn.models.presets import OptimConfig
from scalegmn.train.loop import Resume, SimulatedKill, fit

LOOP = OptimConfig(batch_size=8, lr=1e-2, weight_decay=1e-3, epochs=4, warmup_steps=5)


@pytest.mark.parametrize("task", ["classification", "generalization", "editing"])
def test_fit_reports_test_metric_at_best_validation(task, splits_for, model_for):
    splits = splits_for(task, sizes=(24, 8, 8)) if task == "editing" else splits_for(task)
    loop = OptimConfig(batch_size=8, lr=1e-2, weight_decay=0.0, epochs=3, warmup_steps=2)
    result = fit(model_for(task, splits), loop, task, splits, seed=0)
    metric = result.metric
    assert len(result.history) == 3  # one evaluation per epoch
    vals = [row[f"val_{metric}"] for row in result.history]
    # Selection rule of the paper: >= for accuracy/tau (later ties win), < for editing MSE.
    if task == "editing":
        chosen = vals.index(min(vals))
    else:
        chosen = len(vals) - 1 - vals[::-1].index(max(vals))
    row = result.history[chosen]
    assert result.selected["step"] == row["step"]
    assert result.selected["test"][metric] == row[f"test_{metric}"]
    assert [r["selected"] for r in result.history].count(True) >= 1
    assert all(math.isfinite(v) for v in vals)


def test_training_reduces_the_loss(splits_for, model_for):
    splits = splits_for("generalization")
    loop = OptimConfig(batch_size=8, lr=1e-2, weight_decay=0.0, epochs=8, warmup_steps=1)
    result = fit(model_for("generalization", splits), loop, "generalization", splits, seed=0)
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    assert result.selected["val"]["kendall_tau"] > 0.3


def test_editing_learns_a_dilation_like_edit(splits_for, model_for):
    splits = splits_for("editing", sizes=(24, 8, 8))
    model = model_for("editing", splits)
    before = fit(model, OptimConfig(batch_size=8, lr=0.0, weight_decay=0.0, epochs=1), "editing", splits, seed=0)
    after = fit(model_for("editing", splits), OptimConfig(batch_size=8, lr=5e-2, weight_decay=0.0, epochs=3, warmup_steps=1),
                "editing", splits, seed=0)
    assert after.selected["val"]["mse"] < before.selected["val"]["mse"]


@pytest.mark.parametrize(("task", "stop", "resumed_at"), [("classification", 10, 8), ("editing", 8, 8),
                                                           ("embedding", 10, 8)])
def test_killed_run_resumes_to_the_same_result(task, stop, resumed_at, tmp_path, splits_for, model_for):
    splits = splits_for(task, sizes=(24, 8, 8)) if task == "editing" else splits_for(task)
    reference = fit(model_for(task, splits, seed=3), LOOP, task, splits, seed=3)

    resume = tmp_path / ".resume" / "last.pt"
    with pytest.raises(SimulatedKill):
        # Checkpoints every 4 steps and at each epoch end (6 steps for 48 networks, 3 for 24):
        # the run resumes mid-epoch and redoes the steps after the last checkpoint.
        fit(model_for(task, splits, seed=3), LOOP, task, splits, seed=3,
            resume=Resume(resume, every_steps=4, fingerprint="job", stop_after_steps=stop))
    assert resume.exists()
    torch.manual_seed(12345)  # whatever the global RNG does in between must not matter
    resumed = fit(model_for(task, splits, seed=3), LOOP, task, splits, seed=3,
                  resume=Resume(resume, every_steps=4, fingerprint="job"))

    assert resumed.resumed_from_step == resumed_at
    assert resumed.history == reference.history
    assert resumed.selected == reference.selected
    for k, v in reference.best_state.items():
        assert torch.equal(v, resumed.best_state[k]), k


def test_resume_file_of_other_settings_is_ignored(tmp_path, splits_for, model_for):
    splits = splits_for("classification")
    resume = tmp_path / "last.pt"
    with pytest.raises(SimulatedKill):
        fit(model_for("classification", splits), LOOP, "classification", splits, seed=0,
            resume=Resume(resume, every_steps=2, fingerprint="old", stop_after_steps=4))
    result = fit(model_for("classification", splits), LOOP, "classification", splits, seed=0,
                 resume=Resume(resume, every_steps=2, fingerprint="new"))
    assert result.resumed_from_step is None
    resume.unlink()  # run_job deletes it after success; fit() leaves that to its caller
    # Control: the same fingerprint does resume.
    with pytest.raises(SimulatedKill):
        fit(model_for("classification", splits), LOOP, "classification", splits, seed=0,
            resume=Resume(resume, every_steps=2, fingerprint="new", stop_after_steps=4))
    again = fit(model_for("classification", splits), LOOP, "classification", splits, seed=0,
                resume=Resume(resume, every_steps=2, fingerprint="new"))
    assert again.resumed_from_step == 4


def test_same_seed_same_result_other_seed_differs(splits_for, model_for):
    splits = splits_for("classification")
    a = fit(model_for("classification", splits), LOOP, "classification", splits, seed=1)
    b = fit(model_for("classification", splits), LOOP, "classification", splits, seed=1)
    c = fit(model_for("classification", splits), LOOP, "classification", splits, seed=2)
    assert a.history == b.history
    assert a.history != c.history


def test_warmup_then_constant_lr(splits_for, model_for):
    splits = splits_for("classification")
    loop = OptimConfig(batch_size=8, lr=1e-2, weight_decay=0.0, epochs=3, warmup_steps=12)
    result = fit(model_for("classification", splits), loop, "classification", splits, seed=0)
    lrs = [row["lr"] for row in result.history]  # after 6, 12, 18 steps
    assert lrs[0] == pytest.approx(1e-2 * 7 / 12)
    assert lrs[1] == pytest.approx(1e-2) and lrs[2] == pytest.approx(1e-2)


def test_max_steps_with_eval_every(splits_for, model_for):
    splits = splits_for("classification")
    loop = OptimConfig(batch_size=8, lr=1e-2, weight_decay=0.0, max_steps=10, eval_every_steps=4, warmup_steps=1)
    result = fit(model_for("classification", splits), loop, "classification", splits, seed=0)
    assert [r["step"] for r in result.history] == [4, 8, 10]
    assert result.steps == 10
