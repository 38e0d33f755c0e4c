"""The data stages as a DAG: dry run, an offline build of every store, and what reruns.

Runs Snakemake in a temporary copy of the workflow whose config.yaml is data_tiny.yaml (three
datasets, four views: every job costs a torch import, so the tiny DAG is kept small). The tests
sharing the built DAG restore config.yaml when they change it.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = Path(__file__).with_name("data_tiny.yaml")

pytestmark = pytest.mark.slow


def copy_workflow(dest: Path, config: dict | None = None) -> Path:
    for name in ("Snakefile", "rules", "workflow_scripts", "envs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    if config is None:
        shutil.copy2(TINY, dest / "config.yaml")
    else:
        (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


@functools.cache
def snakemake_env() -> dict[str, str]:
    """The environment of every Snakemake run here: one thread per job, and no SLURM probe.

    Importing Snakemake imports the installed SLURM executor plugin, which runs
    ``scontrol show config`` at import time; where SLURM is installed but no controller
    answers, that takes ~9 s per Snakemake call. These tests use the local executor, so a
    stand-in ``scontrol`` that fails at once (as on a machine without SLURM) is put first
    on PATH.
    """
    shim = Path(tempfile.mkdtemp(prefix="no_slurm_"))
    atexit.register(shutil.rmtree, shim, True)
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"}


def smk(workdir: Path, *args: str, timeout: int = 300) -> str:
    proc = subprocess.run([SNAKEMAKE, "--cores", "2", *args], cwd=workdir, env=snakemake_env(), capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    counts: dict[str, int] = {}
    block = dry_run_output.split("Job stats:")[1].split("total")[0] if "Job stats:" in dry_run_output else ""
    for line in block.splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run_jobs(workdir: Path, target: str = "data_all") -> dict[str, int]:
    return job_counts(smk(workdir, "-n", target))


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny workflow after a full build of every store."""
    work = copy_workflow(tmp_path_factory.mktemp("wf"))
    first = dry_run_jobs(work)
    smk(work, "data_all", timeout=600)
    return work, first


def stage_counts(n_datasets: int, n_views: int) -> dict[str, int]:
    per_dataset = ("build_standin", "ingest_dataset", "make_splits", "canonicalize_dataset")
    return {**dict.fromkeys(per_dataset, n_datasets), "build_cache": n_views, "data_all": 1}


def test_dry_run_lists_every_data_stage(built, tmp_path):
    _, counts = built
    assert counts == stage_counts(3, 4)
    # The shipped config plans every stage of all six stand-in datasets and every view.
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    assert dry_run_jobs(copy_workflow(tmp_path, shipped)) == stage_counts(6, len(shipped["views"]))


def test_build_creates_loadable_stores_offline(built):
    from scalegmn.data.cache import load_split

    work, _ = built
    cfg = yaml.safe_load(TINY.read_text())
    for view, v in cfg["views"].items():
        sizes = {}
        for split in ("train", "val", "test"):
            s = load_split(work / "results" / "cache" / view / f"{split}.zarr")
            sizes[split] = s.size
            assert s.attrs["view"] == view and s.attrs["split"] == split and s.attrs["config_hash"]
            assert s.attrs["source_sha256"]
            if v["dataset"].endswith("_gs"):
                assert s.task_kind == "regression"
            else:
                assert s.task_kind == "classification" and s.n_classes == 10
        assert min(sizes.values()) > 0, (view, sizes)
    mnist_test = load_split(work / "results/cache/mnist/test.zarr")
    assert mnist_test.images is not None and mnist_test.images.shape[1:] == (1, 28, 28)
    both = load_split(work / "results/cache/svhn_gs_both/train.zarr")
    assert both.sign_mask is not None and both.sign_mask.any() and not both.sign_mask.all()
    tanh = load_split(work / "results/cache/svhn_gs_tanh/test.zarr")
    assert tanh.spec.hidden_activation == "tanh" and tanh.sign_mask is None
    # canonicalize 'none' reports max |b| per hidden layer; 'phase' preserves every function.
    none = json.loads((work / "results/data/mnist_inr/canonical.json").read_text())
    assert len(none["max_abs_hidden_bias_before"]) == 2 and none["original_script_is_identity"]
    phase = json.loads((work / "results/data/cifar10_inr/canonical.json").read_text())
    assert phase["mode"] == "phase" and phase["max_render_difference"] <= 1e-4
    for rule in ("build_standin", "ingest_dataset", "canonicalize_dataset", "build_cache"):
        assert any((work / "results/logs" / rule).rglob("*.log")), rule
        assert any((work / "results/benchmarks" / rule).rglob("*.tsv")), rule
    # That nothing is left to do is asserted (with reordered keys) by the reordering test.


def test_canonicalization_change_reruns_only_that_dataset(built):
    work, _ = built
    cfg = yaml.safe_load(TINY.read_text())
    cfg["datasets"]["mnist_inr"]["canonicalize"] = "phase"
    write_config(work, cfg)
    try:
        out = smk(work, "-n", "data_all")
        assert job_counts(out) == {"canonicalize_dataset": 1, "build_cache": 1, "data_all": 1}
        assert "results/data/mnist_inr/canonical.h5" in out
        others = [d for d in cfg["datasets"] if d != "mnist_inr"]
        assert len(others) >= 2
        for other in others:
            assert f"results/data/{other}/" not in out
        # The only job whose params changed is mnist_inr's canonicalization; the rest follows.
        assert out.count("Params have changed") == 1
        assert re.search(r"Params have changed[^\n]*before: 'none' now: 'phase'", out)
        assert re.search(r"rule canonicalize_dataset:(?:\n.*){0,8}wildcards: dataset=mnist_inr", out)
    finally:
        shutil.copy2(TINY, work / "config.yaml")


def test_reordering_config_keys_reruns_nothing(built):
    work, _ = built
    cfg = yaml.safe_load(TINY.read_text())

    def rev(x):
        return {k: rev(v) for k, v in reversed(list(x.items()))} if isinstance(x, dict) else x

    write_config(work, rev(cfg))
    try:
        assert "Nothing to be done" in smk(work, "-n", "data_all")
    finally:
        shutil.copy2(TINY, work / "config.yaml")


def test_config_typo_stops_before_any_job(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["datasets"]["mnist_inr"]["canonicalise"] = cfg["datasets"]["mnist_inr"].pop("canonicalize")
    work = copy_workflow(tmp_path, cfg)
    proc = subprocess.run([SNAKEMAKE, "-n", "data_all"], cwd=work, env=snakemake_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "config key 'datasets.mnist_inr.canonicalise': unknown key; did you mean 'canonicalize'?" in (
        proc.stdout + proc.stderr)


def test_table1_dry_run_lists_data_stages_of_its_datasets(tmp_path):
    """On the shipped config, `snakemake -n results/table1` plans the data stages of table 1."""
    work = copy_workflow(tmp_path, yaml.safe_load((REPO / "config.yaml").read_text()))
    out = smk(work, "-n", "results/table1")
    counts = job_counts(out)
    assert counts.get("build_standin") == 3 and counts.get("canonicalize_dataset") == 3
    for ds in ("mnist_inr", "fmnist_inr", "cifar10_inr"):
        assert f"results/data/{ds}/raw" in out


def test_lint_is_clean_for_data_rules(tmp_path):
    work = copy_workflow(tmp_path)
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=work, env=snakemake_env(), capture_output=True, text=True,
                          timeout=120)
    out = proc.stdout + proc.stderr
    data_rules = ("download_dataset", "extract_dataset", "build_standin", "ingest_dataset", "make_splits",
                  "canonicalize_dataset", "build_cache")
    flagged = [r for r in data_rules if re.search(rf"\b{r}\b", out)]
    assert not flagged, out[-3000:]
