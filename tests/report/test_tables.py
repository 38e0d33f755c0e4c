"""Table assembly from metrics.json/history.csv: numbers, paper columns, files."""

from __future__ import annotations

import csv
import json
import math
import statistics

import pytest

from scalegmn.report.tables import _selected_point, curve_bands, curves, write_table
from scalegmn.train.experiments import TableConfig

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
                w.writerow(["step", "epoch", "train_loss", "val_accuracy", "test_accuracy", "selected"])
                w.writerows([[10, 0.5, 1.0, v / 2, v / 2, True], [20, 1.0, 0.5, v, v, True]])
            metrics[(view, model, seed)] = d / "metrics.json"
            history[(view, model, seed)] = d / "history.csv"
    return metrics, history, value


def test_table_files_and_numbers(tmp_path):
    table = TableConfig.from_mapping("tables.table1", "table1", TABLE)
    metrics, history, value = _fake_jobs(tmp_path, table)
    out = tmp_path / "results" / "table1"
    write_table(table, metrics, history, out)
    assert sorted(p.name for p in out.iterdir()) == ["figures", "provenance.json", "table1.csv", "table1.html", "table1.md",
                                                           "table1.tex"]
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs == ["curves_fmnist.png", "curves_fmnist.svg", "curves_mnist.png", "curves_mnist.svg",
                    "table1_bars.png", "table1_bars.svg"]

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
    tex = (out / "table1.tex").read_text()
    # pandas' LaTeX writer: the same cells, the paper's numbers and the marks
    assert "92.50 ± 3.54 (paper 96.57 ± 0.10)" in tex and "F-MNIST (stand-in)" in tex and "paper: F-MNIST †" in tex
    assert "\\toprule" in tex and "NOT comparable" in tex
    page = (out / "table1.html").read_text()
    assert "<td>92.50 ± 3.54 (paper 96.57 ± 0.10)</td>" in page and "<th>F-MNIST (stand-in)</th>" in page


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
    from scalegmn.train.experiments import table_from_params, table_params

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
    assert sorted(p.name for p in (tmp_path / "table3" / "figures").iterdir()) == ["table3_bars.png", "table3_bars.svg"]


# --- training curves ---------------------------------------------------------------------------


def _rows(steps, val, test, selected=()):
    """History rows as csv.DictReader gives them back (strings)."""
    return [{"step": str(st), "epoch": str(st / 10), "train_loss": "0.5", "val_accuracy": str(v),
             "test_accuracy": str(t), "selected": str(st in selected)}
            for st, v, t in zip(steps, val, test, strict=True)]


def test_curve_bands_mean_and_min_max_across_seeds():
    seeds = [_rows([10, 20, 30], [0.25, 0.5, 0.5], [0, 0, 0]),
             _rows([10, 20, 30], [0.5, 0.75, 0.25], [0, 0, 0]),
             _rows([10, 20, 30], [0.75, 0.25, 0.75], [0, 0, 0])]
    steps, mean, lo, hi = curve_bands(seeds, "val_accuracy")
    assert steps == [10, 20, 30]
    assert mean == [0.5, 0.5, 0.5]
    assert lo == [0.25, 0.25, 0.25]
    assert hi == [0.75, 0.75, 0.75]
    # scaled to the table's units (accuracy in %)
    assert curve_bands(seeds, "val_accuracy", 100.0)[1:] == ([50.0] * 3, [25.0] * 3, [75.0] * 3)
    assert curve_bands([], "val_accuracy") == ([], [], [], [])


def test_curve_bands_align_on_the_steps_common_to_all_seeds():
    seeds = [_rows([10, 20, 30, 40], [0.25, 0.5, 0.75, 1.0], [0] * 4),
             _rows([20, 30], [0.75, 0.25], [0] * 2),           # started late
             _rows([5, 20, 30, 40], [0.0, 1.0, 0.5, 1.0], [0] * 4)]  # another grid
    steps, mean, lo, hi = curve_bands(seeds, "val_accuracy")
    assert steps == [20, 30]
    assert mean == [0.75, 0.5]
    assert lo == [0.5, 0.25]
    assert hi == [1.0, 0.75]


def test_curve_bands_gap_where_a_seed_has_no_number():
    seeds = [_rows([10, 20], [0.5, "nan"], [0] * 2), _rows([10, 20], [0.25, 0.75], [0] * 2)]
    seeds[1][0]["val_accuracy"] = ""  # a cell left empty by csv.DictWriter
    steps, mean, lo, hi = curve_bands(seeds, "val_accuracy")
    assert steps == [10, 20]
    assert all(math.isnan(x) for x in mean + lo + hi)


def test_selected_point_is_the_last_marked_evaluation():
    rows = _rows([10, 20, 30], [0.5, 0.75, 0.25], [0.25, 0.5, 1.0], selected=(10, 20))
    assert _selected_point(rows, "test_accuracy", 100.0) == (20, 50.0)
    assert _selected_point(_rows([10], [0.5], [0.5]), "test_accuracy") is None


CURVE_TABLE = {
    "title": "INR classification",
    "task": "classification",
    "seeds": [0, 1, 2],
    "columns": {
        "mnist": {"label": "MNIST", "preset": "mnist_cls/scalegmn", "real": True},
        "fmnist": {"label": "F-MNIST", "preset": "fmnist_cls/scalegmn", "real": False},
    },
    "rows": {"mlp": {"label": "MLP", "model": {"kind": "mlp"}}, "scalegmn": {"label": "ScaleGMN"}},
}


def _fake_histories(tmp_path, table):
    """2 models x 3 seeds per column; test accuracy of seed s, model k at step j: known dyadic values."""
    steps = [100, 200, 300, 400]
    base = {"mlp": [0.125, 0.25, 0.375, 0.375], "scalegmn": [0.25, 0.5, 0.75, 0.875]}
    paths, expected = {}, {}
    for c in table.columns:
        for model, b in base.items():
            for s in table.seeds:
                shift = (s - 1) * 0.0625  # seeds 0, 1, 2: -1/16, 0, +1/16 -> mean = base
                test = [x + shift for x in b]
                val = [x + shift / 2 for x in b]
                chosen = steps[:3] if model == "scalegmn" else steps[:2 + (s == 2)]
                p = tmp_path / c.view / model / f"seed{s}" / "history.csv"
                p.parent.mkdir(parents=True)
                with open(p, "w", newline="") as f:
                    w = csv.DictWriter(f, ["step", "epoch", "train_loss", "val_accuracy", "test_accuracy", "selected"])
                    w.writeheader()
                    w.writerows(_rows(steps, val, test, selected=chosen))
                paths[(c.view, model, s)] = p
                expected[(c.view, model, s)] = (chosen[-1], 100 * test[steps.index(chosen[-1])])
    return paths, base, expected


def test_curves_draw_mean_band_and_selected_points(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    table = TableConfig.from_mapping("tables.t", "t", CURVE_TABLE)
    histories, base, expected = _fake_histories(tmp_path, table)
    drawn = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (drawn.append(fig), close(fig)))
    figdir = tmp_path / "figures"
    figdir.mkdir()
    paths = curves(table, histories, figdir, chance=0.1)

    names = ["curves_mnist.png", "curves_mnist.svg", "curves_fmnist.png", "curves_fmnist.svg"]
    assert paths == [figdir / n for n in names]
    assert sorted(p.name for p in figdir.iterdir()) == sorted(names)  # no temporary files left
    assert all(p.stat().st_size > 0 for p in paths)
    dpi = Image.open(figdir / "curves_mnist.png").info["dpi"]
    assert dpi == pytest.approx((200, 200), abs=0.01)

    assert len(drawn) == 2
    for fig, c in zip(drawn, table.columns, strict=True):
        assert ("stand-in data" in fig._suptitle.get_text()) == (not c.real)
        val_ax, test_ax = fig.axes
        for ax, split in ((val_ax, "val"), (test_ax, "test")):
            curves_ = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
            assert len(curves_) == 2  # one mean line per model
            for ln, model in zip(curves_, ("mlp", "scalegmn"), strict=True):
                assert list(ln.get_xdata()) == [100, 200, 300, 400]
                assert list(ln.get_ydata()) == [100 * x for x in base[model]]
            bands = ax.collections
            assert len(bands) == 2
            for band, model in zip(bands, ("mlp", "scalegmn"), strict=True):
                ys = band.get_paths()[0].vertices[:, 1]
                half = 6.25 if split == "test" else 3.125  # seed shift, in %
                assert ys.min() == pytest.approx(100 * min(base[model]) - half)
                assert ys.max() == pytest.approx(100 * max(base[model]) + half)
            chance = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
            assert [list(ln.get_ydata()) for ln in chance] == [[10.0, 10.0]]
        markers = sorted((float(ln.get_xdata()[0]), float(ln.get_ydata()[0]))
                         for ln in test_ax.lines if ln.get_marker() == "o")
        want = sorted(expected[(c.view, m, s)] for m in ("mlp", "scalegmn") for s in table.seeds)
        assert markers == want
        assert not [ln for ln in val_ax.lines if ln.get_marker() == "o"]


def test_curves_without_chance_and_missing_seed(tmp_path):
    table = TableConfig.from_mapping("tables.t", "t", CURVE_TABLE)
    histories, _, _ = _fake_histories(tmp_path, table)
    del histories[("mnist", "mlp", 1)]
    histories = {k: v for k, v in histories.items() if k[0] == "mnist"}
    figdir = tmp_path / "figures"
    figdir.mkdir()
    assert [p.name for p in curves(table, histories, figdir)] == ["curves_mnist.png", "curves_mnist.svg"]


def test_latex_escapes_labels_marks_and_notes(tmp_path):
    # A label with LaTeX's special characters, as a user's own table may have.
    spec = {**TABLE, "title": "Zoo_1 & 50% #2", "columns": {
        "mnist": {"label": "MNIST_a&b", "preset": "mnist_cls/scalegmn", "real": False}},
        "rows": {"mlp": {"label": "MLP {x}", "model": {"kind": "mlp"}}}}
    table = TableConfig.from_mapping("tables.t", "t", spec)
    metrics, history, _ = _fake_jobs(tmp_path, TableConfig.from_mapping("tables.table1", "table1", TABLE))
    keep = {k: v for k, v in metrics.items() if k[0] == "mnist" and k[1] == "mlp"}
    write_table(table, keep, {k: history[k] for k in keep}, tmp_path / "t")
    tex = (tmp_path / "t" / "t.tex").read_text()
    assert r"MNIST\_a\&b (stand-in)" in tex and r"MLP \{x\}" in tex
    body = tex.split("\n", 1)[1]  # below the title comment line
    assert "&b" not in body.replace(r"\&b", "") and "_a" not in body.replace(r"\_a", "")
