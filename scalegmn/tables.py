"""Assemble a results table from the train jobs' metrics.json and history.csv files.

A table directory holds ``<name>.md``, ``<name>.csv`` (long form: model, dataset, metric, mean,
std, n_seeds, plus the paper's number and whether it is comparable), ``<name>.tex`` and
``figures/`` (a bar chart of the table and one training-curve plot per column). Cells are mean +-
sample std (ddof=1) over seeds, in the paper's units (accuracy %, editing MSE 1e-2).

The paper's number is shown beside ours only in columns marked ``real: true`` (trained on the real
dataset). For stand-in columns it goes to separate columns headed "paper (real data)", because the
numbers are not comparable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalegmn.experiments import TASK_METRICS, TableConfig
from scalegmn.paper import paper_cell

log = logging.getLogger(__name__)

Job = tuple[str, str, int]  # (view, model, seed)


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def summarise(table: TableConfig, metrics: Mapping[Job, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Long-form rows, one per (model, dataset), in the table's row/column order."""
    tm = TASK_METRICS[table.task]
    rows = []
    for r in table.rows:
        for c in table.columns:
            values = [float(metrics[(c.view, r.key, s)]["value"]) * tm.scale for s in table.seeds]
            mean, std = _mean_std(values)
            paper = paper_cell(table.task, r.paper_row, c.view)
            ref = metrics[(c.view, r.key, table.seeds[0])].get("reference")
            rows.append(
                {
                    "model": r.label,
                    "dataset": c.label,
                    "metric": f"{tm.label} ({tm.unit})" if tm.unit else tm.label,
                    "mean": mean,
                    "std": std,
                    "n_seeds": len(values),
                    "values": values,
                    "real_data": c.real,
                    "paper_row": r.paper_row or "",
                    "paper_mean": paper[0] if paper else None,
                    "paper_std": paper[1] if paper else None,
                    "reference": ref and {"label": ref["label"], "value": float(ref["value"]) * tm.scale},
                }
            )
    return rows


def reference_values(table: TableConfig, rows: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """(column label, reference label, value) for columns whose jobs report a reference (the
    unedited INRs of the editing task), in the table's units."""
    out = []
    for c in table.columns:
        cell = next((r for r in rows if r["dataset"] == c.label and r.get("reference")), None)
        if cell:
            out.append((c.label, cell["reference"]["label"], cell["reference"]["value"]))
    return out


def _digits(task: str) -> int:
    return 4 if task == "generalization" else 2


def _fmt(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cell(rows: list[dict[str, Any]], model: str, dataset: str) -> dict[str, Any]:
    return next(r for r in rows if r["model"] == model and r["dataset"] == dataset)


def to_markdown(table: TableConfig, rows: list[dict[str, Any]]) -> str:
    tm, d = TASK_METRICS[table.task], _digits(table.task)
    stand_in = [c for c in table.columns if not c.real]
    head = ["Model"] + [c.label + (" (stand-in)" if not c.real else "") for c in table.columns]
    head += [f"paper: {c.label} †" for c in stand_in]
    lines = [
        f"# {table.title}",
        "",
        f"Metric: {tm.label}{' in ' + tm.unit if tm.unit else ''}, "
        f"{'higher' if tm.higher_is_better else 'lower'} is better. "
        f"Mean ± std over {len(table.seeds)} seeds ({', '.join(map(str, table.seeds))}); "
        "the test metric at the evaluation with the best validation metric.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in table.rows:
        cells = [r.label]
        for c in table.columns:
            x = _cell(rows, r.label, c.label)
            s = _fmt(x["mean"], x["std"], d)
            if c.real and x["paper_mean"] is not None:
                s += f" (paper {_fmt(x['paper_mean'], x['paper_std'], d)})"
            cells.append(s)
        for c in stand_in:
            x = _cell(rows, r.label, c.label)
            cells.append(_fmt(x["paper_mean"], x["paper_std"], d))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    references = reference_values(table, rows)
    if references:
        label = references[0][1]
        cells = ", ".join(f"{col}: {v:.{d}f}" for col, _, v in references)
        lines += [f"Reference on the same test sets, {label}: {cells}.", ""]
    if stand_in:
        lines.append(
            "† The paper's number on the real dataset (paper rows listed below). Columns "
            "marked (stand-in) were trained on the offline stand-in zoos: they show that the pipeline "
            "runs and how the models rank, and are NOT comparable with the paper's numbers."
        )
    mapping = ", ".join(f"{r.label} → {r.paper_row}" for r in table.rows if r.paper_row)
    if mapping:
        lines.append(f"Paper rows: {mapping}.")
    lines.append("")
    return "\n".join(lines)


def to_latex(table: TableConfig, rows: list[dict[str, Any]]) -> str:
    d = _digits(table.task)
    cols = "l" + "c" * len(table.columns)
    out = [
        "% " + table.title,
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        "Model & " + " & ".join(c.label.replace("_", "\\_") for c in table.columns) + " \\\\",
        "\\midrule",
    ]
    for r in table.rows:
        cells = []
        for c in table.columns:
            x = _cell(rows, r.label, c.label)
            cells.append(f"${x['mean']:.{d}f} \\pm {x['std']:.{d}f}$")
        out.append(r.label + " & " + " & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(out)


def to_csv(rows: list[dict[str, Any]], path: Path) -> None:
    import csv

    fields = ["model", "dataset", "metric", "mean", "std", "n_seeds", "real_data", "paper_row", "paper_mean", "paper_std", "values"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "values": json.dumps(r["values"])})


def bar_chart(table: TableConfig, rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tm = TASK_METRICS[table.task]
    n_rows, n_cols = len(table.rows), len(table.columns)
    width = 0.8 / n_rows
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * n_cols, 3.6))
    for i, r in enumerate(table.rows):
        xs = [j + (i - (n_rows - 1) / 2) * width for j in range(n_cols)]
        cells = [_cell(rows, r.label, c.label) for c in table.columns]
        ax.bar(xs, [x["mean"] for x in cells], width, yerr=[x["std"] for x in cells], label=r.label, capsize=2)
    for k, (col, label, value) in enumerate(reference_values(table, rows)):
        j = [c.label for c in table.columns].index(col)
        ax.hlines(value, j - 0.45, j + 0.45, colors="k", linestyles="dashed",
                  label=label if k == 0 else None)
    ax.set_xticks(range(n_cols), [c.label for c in table.columns])
    ax.set_ylabel(f"{tm.label} ({tm.unit})" if tm.unit else tm.label)
    ax.set_title(table.title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves(table: TableConfig, histories: Mapping[Job, Path], figdir: Path) -> list[Path]:
    """One figure per column: validation metric against step, one line per (model, seed)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = TASK_METRICS[table.task].name
    paths = []
    for c in table.columns:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for k, r in enumerate(table.rows):
            for s in table.seeds:
                path = histories.get((c.view, r.key, s))
                if path is None or not Path(path).exists():
                    continue
                with open(path) as f:
                    hist = list(csv.DictReader(f))
                steps = [float(h["step"]) for h in hist]
                vals = [float(h[f"val_{metric}"]) for h in hist]
                ax.plot(steps, vals, color=f"C{k}", alpha=0.8, label=r.label if s == table.seeds[0] else None)
        if not ax.lines:  # no history for this column: no empty figure
            plt.close(fig)
            continue
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"validation {metric}")
        ax.set_title(f"{table.name}: {c.label}", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out = figdir / f"curves_{c.view}.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        paths.append(out)
    return paths


def write_table(
    table: TableConfig,
    metrics_paths: Mapping[Job, str | Path],
    history_paths: Mapping[Job, str | Path],
    out_dir: str | Path,
    extra_figures: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Write the table directory atomically (a temporary directory, then a rename)."""
    out_dir = Path(out_dir)
    metrics = {job: json.loads(Path(p).read_text()) for job, p in metrics_paths.items()}
    rows = summarise(table, metrics)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    (tmp / f"{table.name}.md").write_text(to_markdown(table, rows))
    (tmp / f"{table.name}.tex").write_text(to_latex(table, rows))
    to_csv(rows, tmp / f"{table.name}.csv")
    bar_chart(table, rows, tmp / "figures" / f"{table.name}_bars.png")
    curves(table, {k: Path(v) for k, v in history_paths.items()}, tmp / "figures")
    for name, draw in (extra_figures or {}).items():
        draw(tmp / "figures" / name)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    log.info("wrote %s (%d cells)", out_dir, len(rows))
    return rows
