"""Rule extract_dataset: unpack downloaded or local archives (or link a local folder) into raw/."""

import json
import logging

from scalegmn.data.acquire import prepare_raw

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    download = snakemake.input.get("download")  # noqa: F821
    prepare_raw(json.loads(snakemake.params.acquire), snakemake.output[0], download)  # noqa: F821
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
