"""Rule make_splits: deterministic train/val/test row indices with the official semantics."""

import logging

from scalegmn.data.splits import make_splits_file

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    make_splits_file(snakemake.input.table, snakemake.output.splits, seed=snakemake.params.seed)  # noqa: F821
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
