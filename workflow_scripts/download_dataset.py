"""Rule download_dataset: fetch a dataset's URLs, verified, into results/data/<ds>/download/.

`download.retries` is read from the config, not from the params: it cannot change the data,
so changing it must rerun nothing. Retries and resumed files are summed up in one line on the
console (stderr), the details are in the job log.
"""

import json
import sys

from scalegmn.data.acquire import download_all, download_summary
from scalegmn.data.config import DataConfig
from scalegmn.logs import configure

job_log = configure(snakemake.log[0])
params = json.loads(snakemake.params.acquire)
events: list[dict] = []
try:
    with job_log:
        dataset = DataConfig.from_mapping(snakemake.config).datasets[params["name"]]
        download_all(params["urls"], snakemake.output[0], sha256=params["sha256"],
                     archive_type=params["archive"], retries=dataset.download.retries,
                     key=f"datasets.{params['name']}.download", events=events)
finally:
    line = download_summary(params["name"], events, snakemake.log[0])
    if line:
        print(line, file=sys.stderr, flush=True)
