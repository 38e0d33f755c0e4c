"""Rule table (rules/tables.smk): assemble results/<table>/ from the train jobs' outputs."""

import json

from scalegmn.logs import configure
from scalegmn.report.tables import write_table
from scalegmn.train.experiments import table_from_params

with configure(snakemake.log[0], logger="table", failure=f"assembling {snakemake.wildcards.table} failed"):
    table = table_from_params(snakemake.params.table)
    jobs = [tuple(j) for j in json.loads(snakemake.params.jobs)]
    extra = {}
    if table.task == "editing":  # imported only here: it needs torch and the training code
        from scalegmn.report.editing_figure import examples_figure

        extra["editing_examples.png"] = examples_figure(
            table, list(snakemake.input.checkpoints), list(snakemake.input.stores)
        )
    if table.task == "embedding":
        from scalegmn.report.embedding_figure import table_figures

        extra.update(table_figures(table, jobs, list(snakemake.input.embeddings), list(snakemake.input.stores)))
    write_table(
        table,
        dict(zip(jobs, snakemake.input.metrics, strict=True)),
        dict(zip(jobs, snakemake.input.history, strict=True)),
        snakemake.output[0],
        extra_figures=extra,
    )
