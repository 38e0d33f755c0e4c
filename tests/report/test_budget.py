"""`scalegmn budget`: a table as a shorter step budget would have given it, from the histories."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from scalegmn.cli import main
from scalegmn.errors import ScaleGMNError
from scalegmn.models.presets import OptimConfig
from scalegmn.report.budget import budget_cells, select_within
from scalegmn.train.loop import fit
from scalegmn.train.metrics import SELECTION

from ..train.conftest import FlatModel, make_splits


def _run(task: str, max_steps: int):
    splits = make_splits(task)
    torch.manual_seed(3)
    n_out = splits["train"].n_classes if task == "classification" else 1
    loop = OptimConfig(batch_size=8, lr=1e-2, weight_decay=1e-3, epochs=None, max_steps=max_steps,
                       eval_every_steps=3, warmup_steps=5)
    return fit(FlatModel(splits["train"].spec, n_out), loop, task, splits, seed=3)


@pytest.mark.parametrize("task", ["classification", "generalization"])
def test_a_shorter_budget_from_the_history_is_the_shorter_run(task):
    """The first S steps of a run are an S-step run (constant lr after warmup, batches that do
    not depend on the budget), so selecting within them gives the shorter run's selection."""
    metric = SELECTION[task][0]
    long, short = _run(task, 30), _run(task, 12)
    expected = {"step": short.selected["step"], "val": short.selected["val"][metric],
                "test": short.selected["test"][metric]}
    assert select_within(long.history, task, 12) == expected
    full = select_within(long.history, task, 30)
    assert full == {"step": long.selected["step"], "val": long.selected["val"][metric],
                    "test": long.selected["test"][metric]}
    # control: the budget matters here (a function that ignored it would fail above)
    assert full != expected


def _table(tmp_path, values_by_seed, steps=(50, 100)):
    """A built table's folder: provenance, and per seed a metrics.json and history.csv."""
    table = tmp_path / "results" / "table1"
    table.mkdir(parents=True)
    inputs = []
    for seed, values in values_by_seed.items():
        job = tmp_path / "results" / "train" / f"seed{seed}"
        job.mkdir(parents=True)
        (job / "metrics.json").write_text(json.dumps({"settings": {"task": "classification"}}))
        with open(job / "history.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, ["step", "val_accuracy", "test_accuracy"])
            writer.writeheader()
            for step, (val, test) in zip(steps, values, strict=True):
                writer.writerow({"step": step, "val_accuracy": val, "test_accuracy": test})
        inputs.append({"row": "ScaleGMN", "column": "MNIST", "seed": seed, "model": "scalegmn", "view": "mnist",
                       "metrics": f"../train/seed{seed}/metrics.json", "history": f"../train/seed{seed}/history.csv"})
    (table / "provenance.json").write_text(json.dumps({"inputs": inputs}))
    return table


def test_cells_per_budget_in_the_tables_units(tmp_path, capsys):
    # seed 0 peaks on val at step 50, seed 1 at step 100 (ties go to the later evaluation)
    table = _table(tmp_path, {0: [(0.5, 0.40), (0.4, 0.60)], 1: [(0.3, 0.20), (0.3, 0.30)]})
    cells = {c["steps"]: c for c in budget_cells(table)}
    assert sorted(cells) == [50, 100]
    assert cells[50]["values"] == pytest.approx([40.0, 20.0]) and cells[50]["selected_steps"] == [50, 50]
    assert cells[100]["values"] == pytest.approx([40.0, 30.0]) and cells[100]["selected_steps"] == [50, 100]
    assert cells[100]["mean"] == pytest.approx(35.0) and cells[100]["std"] == pytest.approx(7.0710678)
    assert main(["budget", str(table), "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "50 steps (test accuracy)" in out and "| ScaleGMN | 30.00 ± 14.14 |" in out


def test_bad_budgets_and_missing_files_are_one_line_errors(tmp_path, capsys):
    table = _table(tmp_path, {0: [(0.5, 0.4), (0.4, 0.6)]})
    with pytest.raises(ScaleGMNError, match="no evaluation at step 75"):
        budget_cells(table, [75])
    (tmp_path / "results" / "train" / "seed0" / "history.csv").unlink()
    assert main(["budget", str(table)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "../train/seed0/history.csv is missing" in err[0]
    assert main(["budget", str(tmp_path)]) == 2
    assert "no provenance.json" in capsys.readouterr().err
