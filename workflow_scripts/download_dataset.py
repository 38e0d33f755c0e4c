"""Rule download_dataset: fetch a dataset's URLs, verified, into results/data/<ds>/download/.

`download.retries` is read from the config, not from the params: it cannot change the data,
so changing it must rerun nothing. Retries and resumed files are summed up in one line on the
console (stderr), the details are in the job log.
"""

import json
import logging
import sys

from scalegmn.data.acquire import download_all
from scalegmn.data.config import DataConfig

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def summary(name: str, events: list[dict]) -> str | None:
    """One console line on what the log holds: retries (with their backoff) and resumes."""
    retries = [e for e in events if e["event"] == "retry"]
    resumes = [e for e in events if e["event"] == "resume"]
    parts = []
    if retries:
        waited = sum(e["wait"] for e in retries)
        parts.append(f"{len(retries)} {'retry' if len(retries) == 1 else 'retries'} "
                     f"({waited:.0f} s of backoff; last: {retries[-1]['reason']})")
    if resumes:
        mb = sum(e["offset"] for e in resumes) / 1e6
        parts.append(f"resumed {len(resumes)} time(s), {mb:.1f} MB not fetched again")
    if not parts:
        return None
    return f"{name}: download {', '.join(parts)}; details in {snakemake.log[0]}"  # noqa: F821


params = json.loads(snakemake.params.acquire)  # noqa: F821
events: list[dict] = []
try:
    dataset = DataConfig.from_mapping(snakemake.config).datasets[params["name"]]  # noqa: F821
    download_all(params["urls"], snakemake.output[0], sha256=params["sha256"],  # noqa: F821
                 archive_type=params["archive"], retries=dataset.download.retries,
                 key=f"datasets.{params['name']}.download", events=events)
except Exception as err:  # the one-line reason goes to the job log too
    logging.getLogger("scalegmn").error("%s", err)
    raise
finally:
    line = summary(params["name"], events)
    if line:
        print(line, file=sys.stderr, flush=True)
