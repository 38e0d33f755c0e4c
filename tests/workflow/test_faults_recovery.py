"""After a crash the README's plain command recovers by itself (issue 11, item 11 and the bar).

- The workflow profile (profiles/default/profile.yaml, read by Snakemake 9 on every run) sets
  `rerun-incomplete`, so half-written outputs of a killed run are redone, not refused.
- A lock left by a killed Snakemake run is released when the run that held it is gone
  (rules/startup.smk); a live run's lock is kept.
- The bar: the whole Snakemake process group is killed during `build_cache`, during `train` and
  during `table`; the plain command, run again each time, ends with a `table1.csv` byte-identical
  to an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .test_rerun import REPO, copy_workflow, snakemake

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SCALEGMN = str(Path(sys.executable).with_name("scalegmn"))
TABLE = "results/table1"
STANDIN = "results/data/mnist_inr/raw"

# One small stand-in zoo, one column, two models, one seed. The ScaleGMN job trains long enough
# (60 steps, a resume checkpoint every 2) for a kill to land in the middle of it.
CONFIG = {
    "datasets": {"mnist_inr": {"source": "standin", "canonicalize": "none",
                               "standin": {"size": {"n_train": 24, "n_test": 8, "fit_steps": 40}, "seed": 0}}},
    "views": {"mnist": {"dataset": "mnist_inr"}},
    "training": {"device": "cpu", "checkpoint_every_steps": 2},
    "tables": {"table1": {
        "title": "kill and resume", "task": "classification", "seeds": [0],
        "model": {"n_layers": 1, "d_hid": 8},
        "optim": {"max_steps": 60, "epochs": None, "batch_size": 8, "warmup_steps": 4, "lr": 0.003},
        "columns": {"mnist": {"label": "MNIST", "preset": "mnist_cls/scalegmn", "real": False}},
        "rows": {"mlp": {"label": "MLP", "model": {"kind": "mlp"}, "optim": {"max_steps": 6}},
                 "scalegmn": {"label": "ScaleGMN"}},
    }},
}
SCALEGMN_JOB = "results/train/classification/mnist/scalegmn/seed0"


def _workflow(path: Path) -> Path:
    path.mkdir()
    return copy_workflow(path, json.loads(json.dumps(CONFIG)))


def _start(work: Path, *args: str) -> subprocess.Popen:
    """The README's command, in its own process group (as a terminal runs it)."""
    return subprocess.Popen(
        [SNAKEMAKE, "--cores", "2", *args], cwd=work, env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 240) -> None:
    """SIGKILL the whole process group (Snakemake and its jobs) as soon as ``ready()``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended before {what}:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    while True:  # until every job of the group is gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


def _locked(work: Path) -> bool:
    return any((work / ".snakemake" / "locks").glob("*.lock"))


# --- the workflow profile and the lock (fast) ---------------------------------------------------


def test_the_workflow_profile_is_read_by_a_plain_command(tmp_path):
    import yaml

    profile = yaml.safe_load((REPO / "profiles" / "default" / "profile.yaml").read_text())
    assert profile["rerun-incomplete"] is True
    assert "executor" not in profile  # laptops and CI must never submit to SLURM
    work = _workflow(tmp_path / "wf")
    res = snakemake(work, "-n", TABLE)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Using workflow specific profile profiles/default" in res.stdout + res.stderr


def test_a_killed_run_is_recovered_by_the_plain_command(tmp_path):
    """Killed holding the lock, with a half-built output: Snakemake alone would refuse twice
    (LockException, then IncompleteFilesException)."""
    work = _workflow(tmp_path / "wf")
    proc = _start(work, STANDIN)
    _kill_when(proc, lambda: _locked(work) and (work / "results/logs/build_standin/mnist_inr.log").exists(),
               "build_standin to start")
    assert _locked(work)

    res = snakemake(work, STANDIN)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Released the lock of a killed Snakemake run" in out
    assert not (work / ".snakemake" / "locks").exists()
    assert (work / STANDIN / "mnist-inrs").is_dir()


def test_the_lock_of_a_running_snakemake_is_kept(tmp_path):
    """Control: a lock whose run is alive (here: this test's process) is not taken away."""
    work = _workflow(tmp_path / "wf")
    locks = work / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text(STANDIN + "\n")
    me = psutil.Process()
    (locks / f"scalegmn-driver-{me.pid}.json").write_text(
        json.dumps({"pid": me.pid, "host": socket.gethostname(), "started": me.create_time()}))
    res = snakemake(work, STANDIN)
    assert res.returncode != 0
    assert "LockException" in res.stdout + res.stderr
    assert (locks / "0.output.lock").exists()
    assert not (work / STANDIN).exists()


# --- the bar: kill the process group during build_cache, train and table (slow) ------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """table1.csv of an uninterrupted run."""
    work = _workflow(tmp_path_factory.mktemp("reference") / "wf")
    res = snakemake(work, TABLE)
    assert res.returncode == 0, res.stderr[-5000:]
    return (work / TABLE / "table1.csv").read_bytes()


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    """A run killed three times and recovered with the plain command each time."""
    work = _workflow(tmp_path_factory.mktemp("killed") / "wf")
    cache = work / "results" / "cache" / "mnist"

    proc = _start(work, TABLE)
    _kill_when(proc, lambda: any(cache.glob("*.zarr.tmp")), "build_cache to write a store")
    assert _locked(work) and not (cache / "test.zarr").exists()

    proc = _start(work, TABLE)  # the plain command again
    resume = work / SCALEGMN_JOB / ".resume" / "last.pt"
    _kill_when(proc, resume.exists, "the ScaleGMN job to write a resume checkpoint")
    assert _locked(work) and not (work / SCALEGMN_JOB / "metrics.json").exists()

    proc = _start(work, TABLE)
    _kill_when(proc, lambda: any((work / "results").glob("table1.tmp*")), "the table job to start writing")
    assert _locked(work) and not (work / TABLE).exists()

    final = _start(work, TABLE)
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0, out[-5000:]
    return work, out


@pytest.mark.slow
def test_killed_during_cache_train_and_table_the_plain_command_ends_with_the_same_table(reference, recovered):
    work, out = recovered
    assert (work / TABLE / "table1.csv").read_bytes() == reference
    metrics = json.loads((work / SCALEGMN_JOB / "metrics.json").read_text())
    assert metrics["resumed_from_step"] and metrics["resumed_from_step"] > 0  # resumed, not restarted
    # nothing left behind: no temporary table folder, no resume folder, no lock
    assert not list((work / "results").glob("table1.tmp*"))
    assert not list((work / "results").rglob(".resume"))
    assert not list((work / "results" / "cache").rglob("*.tmp"))
    assert not (work / ".snakemake" / "locks").exists()
    check = subprocess.run([SCALEGMN, "verify", TABLE], cwd=work, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_a_table_that_outlived_its_inputs_is_found_and_rebuilt(reference, recovered):
    """Item 4 as seen: a forced training job killed after Snakemake removed its outputs leaves a
    table that Snakemake calls up to date. `scalegmn verify` names the cell; the README's
    rebuild command restores the same table."""
    work, _ = recovered
    job = work / "results/train/classification/mnist/mlp/seed0"
    proc = _start(work, str(job.relative_to(work) / "metrics.json"), "--forcerun", "train")
    outputs = [job / name for name in ("metrics.json", "history.csv", "best.pt")]
    # Snakemake removes the outputs one by one: kill only once all are gone, or a kill that lands
    # between two removals leaves a different table behind.
    _kill_when(proc, lambda: not any(path.exists() for path in outputs),
               "Snakemake to remove the forced job's outputs")

    plain = snakemake(work, TABLE)
    assert plain.returncode == 0, plain.stderr[-3000:]
    check = subprocess.run([SCALEGMN, "verify", TABLE], cwd=work, capture_output=True, text=True)
    assert check.returncode == 1, check.stdout
    cell = "results/table1: cell MLP / MNIST (seed 0): results/train/classification/mnist/mlp/seed0"
    assert check.stdout.strip().splitlines() == [f"{cell}/metrics.json is missing", f"{cell}/history.csv is missing"]
    assert "snakemake results/table1 --cores 2 --forcerun table" in check.stderr

    rebuilt = snakemake(work, TABLE, "--forcerun", "table")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert subprocess.run([SCALEGMN, "verify", TABLE], cwd=work, capture_output=True).returncode == 0
    assert (work / TABLE / "table1.csv").read_bytes() == reference
