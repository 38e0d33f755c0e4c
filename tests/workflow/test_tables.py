"""Table assembly from metrics.json/history.csv: numbers, paper columns, files."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from scalegmn.experiments import TableConfig
from scalegmn.tables import write_table

TABLE = {
    "title": "INR classification",
    "task": "classification",
    "seeds": [0, 1],
    "columns": {
        "mnist": {"label": "MNIST", "preset": "mnist_cls/scalegmn", "real": True},
        "fmnist": {"label": "F-MNIST", "preset": "fmnist_cls/scalegmn", "real": False},
    },
    "rows": {
        "mlp": {"label": "MLP", "paper_row": "MLP", "model": {"kind": "mlp"}},
        "scalegmn": {"label": "ScaleGMN", "paper_row": "ScaleGMN"},
    },
}


def _fake_jobs(tmp_path, table):
    metrics, history = {}, {}
    value = {("mnist", "mlp"): [0.2, 0.3], ("mnist", "scalegmn"): [0.9, 0.95],
             ("fmnist", "mlp"): [0.1, 0.1], ("fmnist", "scalegmn"): [0.7, 0.8]}
    for (view, model), vals in value.items():
        for seed, v in zip(table.seeds, vals, strict=True):
            d = tmp_path / "train" / view / model / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(json.dumps({"value": v, "metric": "accuracy"}))
            with open(d / "history.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["step", "val_accuracy"])
                w.writerows([[10, v / 2], [20, v]])
            metrics[(view, model, seed)] = d / "metrics.json"
            history[(view, model, seed)] = d / "history.csv"
    return metrics, history, value


def test_table_files_and_numbers(tmp_path):
    table = TableConfig.from_mapping("tables.table1", "table1", TABLE)
    metrics, history, value = _fake_jobs(tmp_path, table)
    out = tmp_path / "results" / "table1"
    write_table(table, metrics, history, out)
    assert sorted(p.name for p in out.iterdir()) == ["figures", "table1.csv", "table1.md", "table1.tex"]
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs == ["curves_fmnist.png", "curves_mnist.png", "table1_bars.png"]

    rows = list(csv.DictReader(open(out / "table1.csv")))
    assert len(rows) == 4
    cell = next(r for r in rows if r["model"] == "ScaleGMN" and r["dataset"] == "MNIST")
    assert float(cell["mean"]) == pytest.approx(92.5)
    assert float(cell["std"]) == pytest.approx(statistics.stdev([90.0, 95.0]))
    assert cell["n_seeds"] == "2"
    assert float(cell["paper_mean"]) == 96.57

    md = (out / "table1.md").read_text()
    # real column: paper beside ours; stand-in column: ours only, paper in its own column
    assert "92.50 ± 3.54 (paper 96.57 ± 0.10)" in md
    assert "75.00 ± 7.07 |" in md and "paper: F-MNIST †" in md
    assert "NOT comparable" in md
    assert "80.46 ± 0.32" in md  # the paper's F-MNIST ScaleGMN number, in the paper column
    assert "$92.50 \\pm 3.54$" in (out / "table1.tex").read_text()


def test_rewrite_replaces_old_table(tmp_path):
    table = TableConfig.from_mapping("tables.table1", "table1", TABLE)
    metrics, history, _ = _fake_jobs(tmp_path, table)
    out = tmp_path / "table1"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    write_table(table, metrics, history, out)
    assert not (out / "stale.txt").exists()
    assert not list(tmp_path.glob(".table1.tmp*"))


def test_table_params_keep_layout_order_and_ignore_key_order():
    from scalegmn.experiments import table_from_params, table_params

    shuffled = {k: TABLE[k] for k in reversed(list(TABLE))}
    assert table_params("table1", TABLE) == table_params("table1", shuffled)
    table = table_from_params(table_params("table1", TABLE))
    assert [c.view for c in table.columns] == ["mnist", "fmnist"]  # not sorted
    swapped = dict(TABLE, columns=dict(reversed(list(TABLE["columns"].items()))))
    assert table_params("table1", swapped) != table_params("table1", TABLE)


def test_editing_table_shows_the_unedited_reference(tmp_path):
    spec = {"title": "INR editing", "task": "editing", "seeds": [0, 1],
            "columns": {"mnist": {"label": "MNIST", "preset": "mnist_editing/scalegmn"}},
            "rows": {"mlp": {"label": "MLP", "model": {"kind": "mlp"}},
                     "scalegmn": {"label": "ScaleGMN"}}}
    table = TableConfig.from_mapping("tables.table3", "table3", spec)
    metrics = {}
    for model, v in (("mlp", 0.04), ("scalegmn", 0.015)):
        for seed in table.seeds:
            p = tmp_path / f"{model}{seed}.json"
            p.write_text(json.dumps({"value": v, "metric": "mse",
                                     "reference": {"label": "Unedited INRs (no model)", "value": 0.0447}}))
            metrics[("mnist", model, seed)] = p
    write_table(table, metrics, {}, tmp_path / "table3")
    md = (tmp_path / "table3" / "table3.md").read_text()
    assert "Reference on the same test sets, Unedited INRs (no model): MNIST: 4.47." in md
    assert "1.50 ± 0.00" in md
    # no histories given: the bar chart, no empty curve figures
    assert sorted(p.name for p in (tmp_path / "table3" / "figures").iterdir()) == ["table3_bars.png"]
