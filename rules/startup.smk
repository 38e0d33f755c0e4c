# Start-up: what runs when the Snakefile is parsed, before the other rule files.
# - the whole of config.yaml is validated by the one schema (scalegmn.train.experiments.PipelineConfig):
#   every section and key, value ranges, local dataset paths, and cross-references (views, presets,
#   datasets); a mistake stops the run with one line naming the key, before any job starts;
#   `only:`/`run:` selections and null entries (scalegmn/overrides.py) are applied first;
# - a lock left by a killed Snakemake run is released, so the plain command recovers by itself.
#   Snakemake's lock files (.snakemake/locks/) hold no process id: a run records its own in
#   onstart (below), and a later run removes the lock only when every run that recorded one
#   on this machine is gone. A lock without such a record is left to `snakemake --unlock`.
import json
import os
import shutil
import socket
import sys

import psutil
from snakemake.settings.types import DeploymentMethod

from scalegmn.errors import ConfigError
from scalegmn.overrides import merge, resolve, typed
from scalegmn.train.experiments import PipelineConfig

# `--config` values arrive as strings below the top level (Snakemake reads them with YAML's base
# loader): read them again as YAML, so `--config 'tables={table1: {seeds: [0]}}'` means seed 0.
config.update(merge(config, typed(workflow.config_settings.config)))

try:
    CONFIG = PipelineConfig.from_mapping(config)
except ConfigError as err:
    raise WorkflowError(f"config.yaml: {err}") from None
# The tables after `only=`, `run=` and null entries: what the table rule's params must show.
RESOLVED_TABLES = resolve(config).get("tables", {})

# With --sdm conda, jobs run in envs/*.yaml, which hold the dependencies but not this package:
# they import scalegmn/ from this repository (no `pip install -e ../`, which resolved against
# .snakemake/conda/). Cluster jobs parse this file again, so they get the same path.
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    os.environ.update(
        PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p)
    )

LOCK_DIR = os.path.join(".snakemake", "locks")
DRIVER_RECORD_PREFIX = "scalegmn-driver-"


def _driver_records():
    """(file name, record) of every run that recorded itself as holding the lock."""
    out = []
    for name in sorted(os.listdir(LOCK_DIR)):
        if name.startswith(DRIVER_RECORD_PREFIX) and name.endswith(".json"):
            try:
                with open(os.path.join(LOCK_DIR, name)) as f:
                    out.append((name, json.load(f)))
            except (OSError, ValueError):
                out.append((name, {}))
    return out


def _running(record):
    """Whether the recorded run is alive: same host, and its pid is the same process (a pid
    reused by another process has another start time). Unsure means running."""
    if record.get("host") != socket.gethostname():
        return True
    try:
        started = psutil.Process(int(record["pid"])).create_time()
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, KeyError, TypeError, ValueError):
        return True
    return abs(started - float(record.get("started", 0))) < 1.0


def release_stale_lock():
    if not workflow.is_main_process or not os.path.isdir(LOCK_DIR):
        return
    if not any(name.endswith(".lock") for name in os.listdir(LOCK_DIR)):
        return
    records = _driver_records()
    if not records or any(_running(r) for _, r in records):
        return
    shutil.rmtree(LOCK_DIR, ignore_errors=True)
    pids = ", ".join(str(r.get("pid", "?")) for _, r in records)
    print(
        f"Released the lock of a killed Snakemake run (pid {pids}, no longer running); "
        "its unfinished jobs are rerun.",
        file=sys.stderr,
    )


def record_driver():
    """Write this run's pid beside the lock it holds (removed with the lock when it ends)."""
    if not os.path.isdir(LOCK_DIR) or not any(n.endswith(".lock") for n in os.listdir(LOCK_DIR)):
        return  # --nolock: nothing to release later
    me = psutil.Process()
    path = os.path.join(LOCK_DIR, f"{DRIVER_RECORD_PREFIX}{me.pid}.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"pid": me.pid, "host": socket.gethostname(), "started": me.create_time()}, f)
    os.replace(path + ".tmp", path)


release_stale_lock()


onstart:
    record_driver()
