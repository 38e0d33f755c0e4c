"""Rule build_cache: the zarr stores of one view (train, val, test), read by training via load_split."""

import json
from pathlib import Path

from scalegmn.data.cache import build_view_stores
from scalegmn.logs import configure

with configure(snakemake.log[0]):
    summary = json.loads(Path(snakemake.input.summary).read_text())
    build_view_stores(
        snakemake.input.table,
        snakemake.input.splits,
        {split: snakemake.output[split] for split in ("train", "val", "test")},
        view=json.loads(snakemake.params.view),
        provenance={"config_hash": snakemake.params.config_hash,
                    "source_sha256": summary["table_sha256"]},
    )
