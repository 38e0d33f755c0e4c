"""Rule make_splits: deterministic train/val/test row indices with the official semantics."""

from scalegmn.data.splits import make_splits_file
from scalegmn.logs import configure

with configure(snakemake.log[0]):
    make_splits_file(snakemake.input.table, snakemake.output.splits, seed=snakemake.params.seed)
