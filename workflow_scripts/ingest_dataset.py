"""Rule ingest_dataset: read every network file once into results/data/<ds>/weights.h5.

Quarantined files (on_bad_file: skip) are summed up in one line on the console (stderr); each
is listed with its reason in quarantine.tsv and the job log.
"""

import json
import sys
from pathlib import Path

from scalegmn.data.ingest import ingest_dataset
from scalegmn.logs import configure

with configure(snakemake.log[0]):
    p = json.loads(snakemake.params.ingest)
    summary = ingest_dataset(
        Path(snakemake.input.raw) / p["root"],
        snakemake.output.table,
        snakemake.output.quarantine,
        dataset=p["dataset"],
        fmt=p["fmt"],
        on_bad_file=p["on_bad_file"],
        checkpoints=p.get("checkpoints", "final"),
    )
if summary["quarantined"]:
    n = summary["quarantined"]
    print(f"{p['dataset']}: {n} of {n + summary['n_networks']} networks quarantined (on_bad_file: skip); "
          f"reasons in {snakemake.output.quarantine}", file=sys.stderr, flush=True)
