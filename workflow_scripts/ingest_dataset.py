"""Rule ingest_dataset: read every network file once into results/data/<ds>/weights.h5.

Quarantined files (on_bad_file: skip) are summed up in one line on the console (stderr); each
is listed with its reason in quarantine.tsv and the job log.
"""

import json
import logging
import sys
from pathlib import Path

from scalegmn.data.ingest import ingest_dataset

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    p = json.loads(snakemake.params.ingest)  # noqa: F821
    summary = ingest_dataset(
        Path(snakemake.input.raw) / p["root"],  # noqa: F821
        snakemake.output.table,  # noqa: F821
        snakemake.output.quarantine,  # noqa: F821
        dataset=p["dataset"],
        fmt=p["fmt"],
        on_bad_file=p["on_bad_file"],
    )
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
if summary["quarantined"]:
    n = summary["quarantined"]
    print(f"{p['dataset']}: {n} of {n + summary['n_networks']} networks quarantined (on_bad_file: skip); "
          f"reasons in {snakemake.output.quarantine}", file=sys.stderr, flush=True)  # noqa: F821
