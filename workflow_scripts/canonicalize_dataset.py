"""Rule canonicalize_dataset: canonicalize every network, check function preservation."""

from scalegmn.data.canonicalize import canonicalize_file
from scalegmn.logs import configure

with configure(snakemake.log[0]):
    canonicalize_file(
        snakemake.input.table,
        snakemake.output.table,
        snakemake.output.summary,
        mode=snakemake.params.mode,
    )
