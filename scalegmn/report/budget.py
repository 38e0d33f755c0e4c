"""A table as fewer training steps would have given it, from its jobs' histories (``scalegmn budget``).

The training loop's learning rate is constant after warmup and its batches do not depend on the
step budget, so the first S steps of a run are an S-step run. Selecting the best validation
evaluation among those at steps <= S (the loop's own rule, :func:`~scalegmn.train.metrics.is_better`)
gives what ``optim.max_steps: S`` would have reported, for every S at which the run evaluated:
how much a column gains from its last steps, and what a shorter budget would cost, without
training again (tests/report/test_budget.py checks this against a shorter run).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalegmn.errors import ScaleGMNError
from scalegmn.report.tables import PROVENANCE, mean_std
from scalegmn.train.metrics import SELECTION, is_better
from scalegmn.vocabulary import TASK_METRICS


def select_within(history: Sequence[dict[str, str]], task: str, steps: int) -> dict[str, float]:
    """The evaluation an S-step run selects: ``{"step", "val", "test"}`` (metric values).

    Raises:
        ScaleGMNError: the run did not evaluate at step ``steps`` (then a shorter run would have
            evaluated where this one did not), or never had a valid validation value.
    """
    metric = SELECTION[task][0]
    evaluated = [int(row["step"]) for row in history]
    if steps not in evaluated:
        raise ScaleGMNError(f"no evaluation at step {steps}: a budget must be one of the evaluation steps "
                            f"{evaluated[:3]}...{evaluated[-1:]}")
    best, selected = None, None
    for row in history:
        if int(row["step"]) > steps:
            break
        value = float(row[f"val_{metric}"])
        if is_better(task, value, best):
            best = value
            selected = {"step": int(row["step"]), "val": value, "test": float(row[f"test_{metric}"])}
    if selected is None:
        raise ScaleGMNError(f"validation {metric} was never a number up to step {steps}")
    return selected


def budget_cells(table_dir: str | Path, budgets: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One record per (budget, row, column) of the table built in ``table_dir``: mean, std and
    per-seed values of the test metric in the table's units, and the selected steps.

    ``budgets`` default to every evaluation step the jobs share.
    """
    table_dir = Path(table_dir)
    provenance = table_dir / PROVENANCE
    if not provenance.is_file():
        raise ScaleGMNError(f"{table_dir}: no {PROVENANCE}; give the folder of a built table (results/tableN)")
    inputs = json.loads(provenance.read_text())["inputs"]
    jobs = []
    for item in inputs:
        for key in ("metrics", "history"):
            if not (table_dir / item[key]).is_file():
                raise ScaleGMNError(f"{table_dir}: {item[key]} is missing (cell {item['row']} / {item['column']}, "
                                    f"seed {item['seed']}); rebuild the table with Snakemake first")
        metrics = json.loads((table_dir / item["metrics"]).read_text())
        with open(table_dir / item["history"], newline="") as fh:
            jobs.append((item, metrics["settings"]["task"], list(csv.DictReader(fh))))
    if budgets is None:
        shared = set.intersection(*({int(r["step"]) for r in history} for _, _, history in jobs))
        budgets = sorted(shared)
    cells: dict[tuple[int, str, str], dict[str, Any]] = {}
    for budget in budgets:
        for item, task, history in jobs:
            chosen = select_within(history, task, int(budget))
            scale = TASK_METRICS[task].scale
            cell = cells.setdefault((int(budget), item["row"], item["column"]), {
                "steps": int(budget), "model": item["row"], "dataset": item["column"],
                "metric": TASK_METRICS[task].label, "values": [], "selected_steps": []})
            cell["values"].append(chosen["test"] * scale)
            cell["selected_steps"].append(chosen["step"])
    for cell in cells.values():
        cell["mean"], cell["std"] = mean_std(cell["values"])
    return list(cells.values())


def format_budgets(cells: list[dict[str, Any]]) -> str:
    """One Markdown table per budget: rows x columns, ``mean ± std``."""
    out = []
    for budget in sorted({c["steps"] for c in cells}):
        mine = [c for c in cells if c["steps"] == budget]
        rows = list(dict.fromkeys(c["model"] for c in mine))
        cols = list(dict.fromkeys(c["dataset"] for c in mine))
        by = {(c["model"], c["dataset"]): c for c in mine}
        out += [f"{budget} steps ({mine[0]['metric']})", "",
                "| Model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for r in rows:
            cells_r = [by.get((r, c)) for c in cols]
            out.append(f"| {r} | " + " | ".join(
                "" if c is None or math.isnan(c["mean"]) else f"{c['mean']:.2f} ± {c['std']:.2f}" for c in cells_r) + " |")
        out.append("")
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn budget`` arguments to ``parser``."""
    parser.add_argument("table", type=Path, help="a built table's folder, e.g. results/table1")
    parser.add_argument("--steps", type=int, nargs="+", metavar="S",
                        help="step budgets (evaluation steps; default: every one)")
    parser.add_argument("--json", action="store_true", help="one JSON line per cell instead of tables")


def run(args: argparse.Namespace) -> int:
    """``scalegmn budget results/table1 --steps 200 300``: print the table at each budget."""
    cells = budget_cells(args.table, args.steps)
    if args.json:
        for cell in cells:
            print(json.dumps(cell))
    else:
        print(format_budgets(cells))
    return 0
