"""Assemble a results table from the train jobs' metrics.json and history.csv files.

A table directory holds ``<name>.md``, ``<name>.html`` (the table as the HTML report shows it),
``<name>.csv`` (long form: model, dataset, metric, mean, std, n_seeds, plus the paper's number and
whether it is comparable), ``<name>.tex`` (pandas' LaTeX writer: every cell, mark and note
escaped) and ``figures/`` (a bar chart of the table and one training-curve plot per column, PNG
at 200 dpi and SVG). Cells are mean +-
sample std (ddof=1) over seeds, in the paper's units (accuracy %, editing MSE 1e-2).

The paper's number is shown beside ours only in columns marked ``real: true`` (trained on the real
dataset). For stand-in columns it goes to separate columns headed "paper (real data)", because the
numbers are not comparable.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import logging
import math
import os
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from scalegmn.atomic import atomic_directory, atomic_write
from scalegmn.data.acquire import sha256_of
from scalegmn.report.paper import paper_cell
from scalegmn.train.experiments import TableConfig
from scalegmn.vocabulary import EXTRA_METRICS, TASK_METRICS

log = logging.getLogger(__name__)

Job = tuple[str, str, int]  # (view, model, seed)

#: The record of what a table was built from, inside the table folder (``scalegmn verify``).
PROVENANCE = "provenance.json"
PROVENANCE_FORMAT = "scalegmn-table-provenance/1"


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value) of a cell's per-seed values."""
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
            mean, std = mean_std(values)
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


def detail_rows(table: TableConfig, metrics: Mapping[Job, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Long-form rows of the task's further metrics (:data:`~scalegmn.vocabulary.EXTRA_METRICS`,
    a job's ``extra_metrics``), one per (metric, model, dataset) that every seed reports."""
    out = []
    for name, tm in EXTRA_METRICS.get(table.task, {}).items():
        for r in table.rows:
            for c in table.columns:
                found = [metrics[(c.view, r.key, s)].get("extra_metrics", {}).get(name) for s in table.seeds]
                if any(v is None for v in found):
                    continue
                values = [float(v) * tm.scale for v in found]
                mean, std = mean_std(values)
                out.append({"model": r.label, "dataset": c.label, "metric": f"{tm.label} ({tm.unit})" if tm.unit else tm.label,
                            "mean": mean, "std": std, "n_seeds": len(values), "values": values,
                            "real_data": c.real, "paper_row": "", "paper_mean": None, "paper_std": None})
    return out


def details_markdown(table: TableConfig, details: list[dict[str, Any]]) -> str:
    """One Markdown table per further metric (rows x columns, mean ± std); "-" where a column has
    no such metric."""
    lines = []
    for tm in EXTRA_METRICS.get(table.task, {}).values():
        label = f"{tm.label} ({tm.unit})" if tm.unit else tm.label
        mine = [d for d in details if d["metric"] == label]
        if not mine:
            continue
        digits = 2 if tm.unit == "%" else 3
        lines += [f"### {label}, {'higher' if tm.higher_is_better else 'lower'} is better", "",
                  "| Model | " + " | ".join(c.label for c in table.columns) + " |",
                  "|" + "---|" * (len(table.columns) + 1)]
        for r in table.rows:
            cells = []
            for c in table.columns:
                x = next((d for d in mine if d["model"] == r.label and d["dataset"] == c.label), None)
                cells.append(_fmt(x["mean"], x["std"], digits) if x else "-")
            lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


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


STAND_IN_MARK = " (stand-in)"
PAPER_MARK = " †"
REFERENCE_NOTE = "Reference on the same test sets"


def _legend(table: TableConfig) -> str:
    tm = TASK_METRICS[table.task]
    return (f"Metric: {tm.label}{' in ' + tm.unit if tm.unit else ''}, "
            f"{'higher' if tm.higher_is_better else 'lower'} is better. "
            f"Mean ± std over {len(table.seeds)} seeds ({', '.join(map(str, table.seeds))}); "
            "the test metric at the evaluation with the best validation metric.")


def grid(table: TableConfig, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    """The table as the Markdown, HTML and LaTeX writers print it: header, one row of cells per
    model (our mean ± std; the paper's number beside it on real-data columns, in separate
    "paper: ... †" columns for stand-in ones) and the notes below it."""
    d = _digits(table.task)
    # paper columns only where the paper has numbers (none for the embedding task)
    has_paper = any(x["paper_mean"] is not None for x in rows)
    stand_in = [c for c in table.columns if not c.real and has_paper]
    head = ["Model"] + [c.label + (STAND_IN_MARK if not c.real else "") for c in table.columns]
    head += [f"paper: {c.label}{PAPER_MARK}" for c in stand_in]
    body = []
    for r in table.rows:
        cells = [r.label]
        for c in table.columns:
            x = _cell(rows, r.label, c.label)
            s = _fmt(x["mean"], x["std"], d)
            if c.real and x["paper_mean"] is not None:
                s += f" (paper {_fmt(x['paper_mean'], x['paper_std'], d)})"
            cells.append(s)
        cells += [_fmt(_cell(rows, r.label, c.label)["paper_mean"], _cell(rows, r.label, c.label)["paper_std"], d)
                  for c in stand_in]
        body.append(cells)
    notes = []
    references = reference_values(table, rows)
    if references:
        notes.append(f"{REFERENCE_NOTE}, {references[0][1]}: "
                     + ", ".join(f"{col}: {v:.{d}f}" for col, _, v in references) + ".")
    if stand_in:
        notes.append("† The paper's number on the real dataset (paper rows listed below). Columns marked"
                     f"{STAND_IN_MARK} were trained on the offline stand-in zoos: they show that the pipeline runs "
                     "and how the models rank, and are NOT comparable with the paper's numbers.")
    elif any(not c.real for c in table.columns):
        notes.append(f"Columns marked{STAND_IN_MARK} were trained on the offline stand-in zoos: they show that the "
                     "pipeline runs and how the models rank.")
    mapping = ", ".join(f"{r.label} → {r.paper_row}" for r in table.rows if r.paper_row)
    if mapping:
        notes.append(f"Paper rows: {mapping}.")
    return head, body, notes


def to_html(table: TableConfig, rows: list[dict[str, Any]]) -> str:
    """The table as a standalone HTML page (what the Snakemake report shows inline)."""
    head, body, notes = grid(table, rows)
    e = html.escape
    lines = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(table.title)}</title>",
             "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
             "th,td{border:1px solid #bbb;padding:4px 8px;text-align:center}td:first-child{text-align:left}"
             "caption{font-weight:bold;margin-bottom:.5em}p{max-width:60em;font-size:90%}</style>",
             "</head><body>", f'<table id="{e(table.name)}">', f"<caption>{e(table.title)}</caption>",
             "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    lines += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>" for cells in body]
    lines += ["</tbody></table>", f"<p>{e(_legend(table))}</p>", *(f"<p>{e(n)}</p>" for n in notes), "</body></html>", ""]
    return "\n".join(lines)


def to_markdown(table: TableConfig, rows: list[dict[str, Any]]) -> str:
    """The table as Markdown: metric legend, one row per model, paper numbers and stand-in notes."""
    head, body, notes = grid(table, rows)
    lines = [f"# {table.title}", "", _legend(table), "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines.append("")
    for note in notes:
        lines.append(note)
        if note.startswith(REFERENCE_NOTE):
            lines.append("")
    lines.append("")
    return "\n".join(lines)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape_latex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (as pandas' LaTeX writer escapes cells)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: TableConfig, rows: list[dict[str, Any]]) -> str:
    """The table as a LaTeX ``tabular`` (booktabs rules) written by pandas' LaTeX writer: the same
    cells, paper numbers and marks as the Markdown, every cell escaped; the legend and notes follow
    as an escaped paragraph (UTF-8 input: ±, †, →)."""
    head, body, notes = grid(table, rows)
    tex = pd.DataFrame(body, columns=head).to_latex(index=False, escape=True,
                                                     column_format="l" + "c" * (len(head) - 1))
    below = " ".join(escape_latex(t) for t in (_legend(table), *notes))
    return "\n".join([f"% {table.title}", tex.rstrip(), f"\\par\\footnotesize {below}", ""])


def to_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the long-form ``rows`` (one per cell, per-seed ``values`` as JSON) to ``path``."""
    fields = ["model", "dataset", "metric", "mean", "std", "n_seeds", "real_data", "paper_row", "paper_mean", "paper_std", "values"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "values": json.dumps(r["values"])})


def bar_chart(table: TableConfig, rows: list[dict[str, Any]], path: Path, chance: float | None = None) -> None:
    """Save a bar chart of the table (mean ± std in the table's units, dashed reference and chance
    lines, stand-in columns marked) as ``path`` (PNG at 200 dpi) and beside it as SVG."""
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
    if chance is not None:
        ax.axhline(chance * tm.scale, color="0.4", linestyle=":", linewidth=1,
                   label=f"chance ({chance * tm.scale:.3g}{' ' + tm.unit if tm.unit else ''})")
    ax.set_xticks(range(n_cols), [textwrap.fill(c.label + ("\n(stand-in)" if not c.real else ""), 14)
                                  for c in table.columns], fontsize=8)
    ax.set_ylabel(f"{tm.label} ({tm.unit})" if tm.unit else tm.label)
    ax.set_title(textwrap.fill(table.title, 55), fontsize=9)
    if any(not c.real for c in table.columns):
        ax.annotate("stand-in data: not comparable with the paper", (0.5, -0.02), xycoords="figure fraction",
                    ha="center", va="bottom", fontsize=7, color="0.3")
    ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    for ext, kwargs in (("png", {"dpi": 200}), ("svg", {"metadata": {"Date": None}})):
        with atomic_write(path.with_suffix(f".{ext}")) as tmp, plt.rc_context({"svg.hashsalt": "scalegmn"}):
            fig.savefig(tmp, format=ext, **kwargs)
    plt.close(fig)


def _number(v: Any) -> float:
    """A history cell as a float; empty or unparsable cells (csv of rows with other keys) are NaN."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _read_history(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def curve_bands(
    histories: list[list[Mapping[str, Any]]], column: str, scale: float = 1.0
) -> tuple[list[float], list[float], list[float], list[float]]:
    """(steps, mean, lo, hi) of ``column`` across seeds, one history (list of rows) per seed.

    Only the steps present in every seed's history are kept (seeds of one model normally share
    their evaluation grid; early stopping or a changed grid can leave them unequal). ``lo`` and
    ``hi`` are the min and max across seeds. A step where any seed's value is missing or NaN is
    NaN in all three (a gap in the plot). Values are multiplied by ``scale`` (the table's units).
    """
    per_seed = []
    for rows in histories:
        # the last row wins if a step repeats
        per_seed.append({_number(r["step"]): _number(r.get(column)) * scale for r in rows})
    if not per_seed:
        return [], [], [], []
    steps = sorted(s for s in set.intersection(*(set(s) for s in per_seed)) if not math.isnan(s))
    mean, lo, hi = [], [], []
    for step in steps:
        vals = [s[step] for s in per_seed]
        if any(math.isnan(v) for v in vals):  # min/max of a list holding NaN depend on its order
            vals = [math.nan]
        mean.append(sum(vals) / len(vals))
        lo.append(min(vals))
        hi.append(max(vals))
    return steps, mean, lo, hi


def _selected_point(rows: list[Mapping[str, Any]], column: str, scale: float = 1.0) -> tuple[float, float] | None:
    """(step, value of ``column``) at the selected evaluation: the last row marked selected (the
    training loop marks every new best validation value, so the last mark is the final pick)."""
    marked = [r for r in rows if str(r.get("selected", "")).strip().lower() in ("true", "1")]
    if not marked:
        return None
    r = marked[-1]
    return _number(r["step"]), _number(r.get(column)) * scale


def curves(
    table: TableConfig, histories: Mapping[Job, Path], figdir: Path, chance: float | None = None
) -> list[Path]:
    """One figure per column (``curves_<view>.png`` at 200 dpi and ``.svg``): validation and test
    metric against step, in the table's units. Per model, the mean over seeds as a line and the
    min-max over seeds as a band; on the test panel a marker per seed at its selected evaluation
    (best validation value). ``chance`` (in the metric's own units, e.g. ``1 / n_classes`` for
    accuracy) draws a dashed chance line. Columns without any history get no figure. Returns the
    paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    tm = TASK_METRICS[table.task]
    quantity = tm.label.removeprefix("test ")
    ylabel = f"{quantity} ({tm.unit})" if tm.unit else quantity
    better = "higher" if tm.higher_is_better else "lower"
    figdir = Path(figdir)
    paths = []
    for c in table.columns:
        loaded = []  # (row, [history per seed])
        for r in table.rows:
            hists = []
            for s in table.seeds:
                path = histories.get((c.view, r.key, s))
                if path is not None and Path(path).exists():
                    hists.append(_read_history(Path(path)))
            if hists:
                loaded.append((r, hists))
        if not loaded:  # no history for this column: no empty figure
            continue
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharex=True, sharey=True, layout="constrained")
        handles, labels = [], []
        for k, (r, hists) in enumerate(loaded):
            color = f"C{k}"
            for ax, split in zip(axes, ("val", "test"), strict=True):
                steps, mean, lo, hi = curve_bands(hists, f"{split}_{tm.name}", tm.scale)
                ax.fill_between(steps, lo, hi, color=color, alpha=0.2, linewidth=0)
                ax.plot(steps, mean, color=color, linewidth=1.4)
            for rows in hists:
                point = _selected_point(rows, f"test_{tm.name}", tm.scale)
                if point is not None:
                    axes[1].plot(*point, marker="o", markersize=5, color=color,
                                 markeredgecolor="k", markeredgewidth=0.6, linestyle="none", zorder=3)
            n = len(hists)
            handles.append((Patch(color=color, alpha=0.2, linewidth=0), Line2D([], [], color=color)))
            labels.append(r.label if n == len(table.seeds) else f"{r.label} ({n} of {len(table.seeds)} seeds)")
        handles.append(Line2D([], [], marker="o", color="0.5", markeredgecolor="k",
                              markeredgewidth=0.6, linestyle="none"))
        labels.append("selected evaluation (per seed)")
        if chance is not None:
            for ax in axes:
                ax.axhline(chance * tm.scale, color="0.4", linestyle="--", linewidth=1)
            handles.append(Line2D([], [], color="0.4", linestyle="--"))
            labels.append(f"chance ({chance * tm.scale:.3g}{' ' + tm.unit if tm.unit else ''})")
        axes[0].set_title(f"validation ({better} is better)", fontsize=9)
        axes[1].set_title("test", fontsize=9)
        for ax in axes:
            ax.set_xlabel("optimizer step")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(ylabel)
        axes[1].tick_params(labelleft=True)
        note = "" if c.real else " (stand-in data, not comparable with the paper)"
        fig.suptitle(f"{table.title}: {c.label}{note}", fontsize=10)
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=8,
                   frameon=False, title=f"line: mean over {len(table.seeds)} seeds; band: min to max over seeds",
                   title_fontsize=8)
        for ext, kwargs in (("png", {"dpi": 200}), ("svg", {"metadata": {"Date": None}})):
            out = figdir / f"curves_{c.view}.{ext}"
            with atomic_write(out) as tmp, plt.rc_context({"svg.hashsalt": "scalegmn"}):
                fig.savefig(tmp, **kwargs)
            paths.append(out)
        plt.close(fig)
    return paths


def _chance_level(table: TableConfig, metrics: Mapping[Job, Mapping[str, Any]]) -> float | None:
    """1 / classes when every classification job of the table has the same class count."""
    classes = {m.get("n_outputs") for m in metrics.values()}
    if table.task != "classification" or len(classes) != 1 or None in classes:
        return None
    return 1.0 / classes.pop()


def provenance(
    table: TableConfig,
    metrics_paths: Mapping[Job, str | Path],
    history_paths: Mapping[Job, str | Path],
    out_dir: Path,
) -> dict[str, Any]:
    """What the table was built from: per (view, model, seed) its cell and the metrics and history
    files, as paths relative to the table folder with their sha256 (``scalegmn verify``)."""

    def rel(p: str | Path) -> str:
        return os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir))

    cells = []
    for (view, model, seed), m in metrics_paths.items():
        entry = {
            "row": table.row(model).label,
            "column": table.column(view).label,
            "view": view,
            "model": model,
            "seed": seed,
            "metrics": rel(m),
            "metrics_sha256": sha256_of(Path(m)),
        }
        h = history_paths.get((view, model, seed))
        if h is not None and Path(h).exists():
            entry.update(history=rel(h), history_sha256=sha256_of(Path(h)))
        cells.append(entry)
    return {
        "format": PROVENANCE_FORMAT,
        "table": table.name,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": cells,
    }


def write_table(
    table: TableConfig,
    metrics_paths: Mapping[Job, str | Path],
    history_paths: Mapping[Job, str | Path],
    out_dir: str | Path,
    extra_figures: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Write the table directory atomically (a temporary directory, then a rename), with
    ``provenance.json`` recording the metrics files it was built from."""
    out_dir = Path(out_dir)
    metrics = {job: json.loads(Path(p).read_text()) for job, p in metrics_paths.items()}
    record = provenance(table, metrics_paths, history_paths, out_dir)
    rows = summarise(table, metrics)
    details = detail_rows(table, metrics)
    markdown = to_markdown(table, rows)
    if details:
        markdown += "\n## Every metric (test split)\n\n" + details_markdown(table, details)
    with atomic_directory(out_dir) as tmp:
        (tmp / "figures").mkdir(parents=True)
        (tmp / f"{table.name}.md").write_text(markdown)
        (tmp / f"{table.name}.tex").write_text(to_latex(table, rows))
        (tmp / f"{table.name}.html").write_text(to_html(table, rows))
        to_csv(rows + details, tmp / f"{table.name}.csv")
        chance = _chance_level(table, metrics)
        bar_chart(table, rows, tmp / "figures" / f"{table.name}_bars.png", chance=chance)
        curves(table, {k: Path(v) for k, v in history_paths.items()}, tmp / "figures", chance=chance)
        for name, draw in (extra_figures or {}).items():
            draw(tmp / "figures" / name)
        (tmp / PROVENANCE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log.info("wrote %s (%d cells)", out_dir, len(rows))
    return rows


# --- scalegmn verify ---------------------------------------------------------------------------


def _shown(path: Path) -> str:
    """``path`` normalised (``results/table1/../train`` -> ``results/train``), relative to the
    working directory when under it."""
    path = Path(os.path.normpath(path))
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def verify_table(table_dir: str | Path) -> list[str]:
    """One line per problem with a table folder: a cell whose metrics file (or history) is
    missing, changed, or newer than the table, or a table without its provenance record.
    An empty list means the table is what its inputs say."""
    table_dir = Path(table_dir)
    shown = _shown(table_dir)
    record_path = table_dir / PROVENANCE
    if not table_dir.is_dir():
        return [f"{shown}: no such table folder"]
    if not record_path.exists():
        return [f"{_shown(record_path)}: missing: the table was built before provenance was recorded, "
                "so its inputs cannot be checked"]
    try:
        record = json.loads(record_path.read_text())
        if record.get("format") != PROVENANCE_FORMAT:
            raise ValueError(f"format {record.get('format')!r}, expected {PROVENANCE_FORMAT!r}")
        inputs = list(record["inputs"])
    except (ValueError, KeyError, TypeError) as err:
        return [f"{_shown(record_path)}: unreadable ({type(err).__name__}: {err})"]
    csv_path = table_dir / f"{record.get('table', table_dir.name)}.csv"
    if not csv_path.exists():
        return [f"{_shown(csv_path)}: missing from the table folder"]
    built = csv_path.stat().st_mtime
    problems = []
    for cell in inputs:
        where = f"{shown}: cell {cell['row']} / {cell['column']} (seed {cell['seed']})"
        for kind in ("metrics", "history"):
            if kind not in cell:
                continue
            path = table_dir / cell[kind]
            if not path.exists():
                problems.append(f"{where}: {_shown(path)} is missing")
                continue
            mtime = path.stat().st_mtime
            if mtime > built:
                problems.append(f"{where}: {_shown(path)} is newer than the table "
                                f"({_when(mtime)} > {_when(built)})")
            elif sha256_of(path) != cell[f"{kind}_sha256"]:
                problems.append(f"{where}: {_shown(path)} has changed since the table was built")
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn verify`` arguments to ``parser``."""
    parser.add_argument("tables", nargs="+", metavar="TABLE_DIR", help="a table folder, e.g. results/table1")


def run(args: argparse.Namespace) -> int:
    """``scalegmn verify results/table1``: exit 0 when every cell's inputs are as recorded, else
    print one line per problem and how to rebuild, and exit 1."""
    failed = []
    for table_dir in args.tables:
        problems = verify_table(table_dir)
        for line in problems:
            print(line)
        if problems:
            failed.append(_shown(Path(table_dir)))
        else:
            print(f"{_shown(Path(table_dir))}: ok, every cell's metrics file is as the table recorded it")
    if failed:
        targets = " ".join(failed)
        print(f"rebuild: snakemake {targets} --cores 2 --forcerun table  (reruns the missing training "
              "jobs, then the table)", file=sys.stderr)
        return 1
    return 0
