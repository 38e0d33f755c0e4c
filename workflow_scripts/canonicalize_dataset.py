"""Rule canonicalize_dataset: canonicalize every network, check function preservation."""

import logging

from scalegmn.data.canonicalize import canonicalize_file

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    canonicalize_file(
        snakemake.input.table,  # noqa: F821
        snakemake.output.table,  # noqa: F821
        snakemake.output.summary,  # noqa: F821
        mode=snakemake.params.mode,  # noqa: F821
    )
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
