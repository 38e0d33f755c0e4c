"""Assemble results/<table>/ from the train jobs' outputs: rule `table` (rules/tables.smk)."""

import json
import logging

from scalegmn.report.tables import write_table
from scalegmn.train.experiments import table_from_params

logging.basicConfig(
    filename=snakemake.log[0],  # noqa: F821 - injected by Snakemake
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
log = logging.getLogger("assemble_table")
name = snakemake.wildcards.table  # noqa: F821
table = table_from_params(snakemake.params.table)  # noqa: F821
jobs = [tuple(j) for j in json.loads(snakemake.params.jobs)]  # noqa: F821
extra = {}
if table.task == "editing":
    from scalegmn.report.editing_figure import examples_figure

    extra["editing_examples.png"] = examples_figure(
        table, list(snakemake.input.checkpoints), list(snakemake.input.stores)  # noqa: F821
    )
try:
    write_table(
        table,
        dict(zip(jobs, snakemake.input.metrics, strict=True)),  # noqa: F821
        dict(zip(jobs, snakemake.input.history, strict=True)),  # noqa: F821
        snakemake.output[0],  # noqa: F821
        extra_figures=extra,
    )
except Exception:
    log.exception("assembling %s failed", name)
    raise
