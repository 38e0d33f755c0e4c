"""Rule build_cache: the zarr stores of one view (train, val, test), read by training via load_split."""

import json
import logging
from pathlib import Path

from scalegmn.data.cache import build_view_stores

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    summary = json.loads(Path(snakemake.input.summary).read_text())  # noqa: F821
    build_view_stores(
        snakemake.input.table,  # noqa: F821
        snakemake.input.splits,  # noqa: F821
        {split: snakemake.output[split] for split in ("train", "val", "test")},  # noqa: F821
        view=json.loads(snakemake.params.view),  # noqa: F821
        provenance={"config_hash": snakemake.params.config_hash,  # noqa: F821
                    "source_sha256": summary["table_sha256"]},
    )
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
