"""Rule build_standin: build the offline stand-in zoo of a dataset into raw/ (real file format)."""

import json
import logging

from scalegmn.data.standins.zoos import build_standin_raw

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    build_standin_raw(json.loads(snakemake.params.acquire), snakemake.output[0])  # noqa: F821
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
