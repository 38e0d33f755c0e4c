"""Rule download_dataset: fetch a dataset's URLs, verified, into results/data/<ds>/download/."""

import json
import logging

from scalegmn.acquire import download_all

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    params = json.loads(snakemake.params.acquire)  # noqa: F821
    download_all(params["urls"], snakemake.output[0], sha256=params["sha256"],  # noqa: F821
                 retries=params["retries"])
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
