"""Rule extract_dataset: unpack downloaded or local archives (or link a local folder) into raw/."""

import json

from scalegmn.data.acquire import prepare_raw
from scalegmn.logs import configure

with configure(snakemake.log[0]):
    download = snakemake.input.get("download")
    prepare_raw(json.loads(snakemake.params.acquire), snakemake.output[0], download)
