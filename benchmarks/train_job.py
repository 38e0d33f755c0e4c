"""Time one pipeline training job in a fresh process, from a finished run's cache: one JSON line.

The job's settings are read from the first line of its log (``results/logs/train/<task>/<view>/
<row>/seed<k>.log``), its stores from ``results/cache/<view>/``; outputs go to a temporary folder.
The line gives the seconds from before ``import torch`` to the end (imports included: they are
part of every job's cost), the CPU seconds split into user and system, the minor page faults, and
whether ``torch._dynamo`` was imported. Run it from two trees with ``benchmarks/side_by_side.py``
(copy this file into the before tree if it lacks it) to compare a change job by job.

Usage (in a run's folder, e.g. a clone that ran the tables):
    OMP_NUM_THREADS=1 python benchmarks/train_job.py --log results/logs/train/classification/mnist/scalegmn_b/seed0.log
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402 - after START: the imports are part of the job's time
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from scalegmn.train.experiments import TrainJob  # noqa: E402
from scalegmn.train.job import JobOutputs, run_job  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="the job's log in a finished run")
    parser.add_argument("--cache", type=Path, default=Path("results/cache"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # a pipeline train job's threads
    match = re.search(r"job (\{.*\}) on ", args.log.read_text().splitlines()[0])
    if match is None:
        sys.exit(f"{args.log}: its first line names no job settings")
    settings = json.loads(match.group(1))
    stores = {name: str(args.cache / settings["view"] / f"{name}.zarr") for name in ("train", "val", "test")}
    with tempfile.TemporaryDirectory(prefix="train_job_") as tmp:
        out = Path(tmp)
        metrics = run_job(
            TrainJob.from_json(match.group(1)), stores,
            JobOutputs(metrics=out / "metrics.json", history=out / "history.csv", checkpoint=out / "best.pt",
                       embeddings=None),
            resume_path=out / "resume.pt", device="cpu", tracking_dir=out / "tracking",
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "job": str(args.log), "steps": metrics.get("steps"), "value": metrics.get("value"),
        "seconds": round(time.perf_counter() - START, 2), "user_seconds": round(usage.ru_utime, 2),
        "sys_seconds": round(usage.ru_stime, 2), "minor_faults": usage.ru_minflt,
        "dynamo_imported": "torch._dynamo" in sys.modules,
    }), flush=True)


if __name__ == "__main__":
    main()
