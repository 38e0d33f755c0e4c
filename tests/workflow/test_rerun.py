"""Rerun only what changed, and resume a killed training job, on a tiny config.

One full run of the tiny workflow (tests/workflow/tiny.yaml) in a temporary copy of the
workflow, then `snakemake -n` after each change to see which jobs would rerun.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TABLE = "results/table1"


def copy_workflow(dest: Path, config: dict) -> Path:
    """The workflow files (and the package sources, which are inputs of the train rule)."""
    for name in ("Snakefile", "README.md"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dest / name)
    for name in ("rules", "workflow_scripts", "report", "profiles", "envs"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name)
    shutil.copytree(REPO / "scalegmn", dest / "scalegmn", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args],
        cwd=workdir, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def planned_jobs(workdir: Path, target: str = TABLE) -> dict[str, int]:
    """rule -> number of jobs `snakemake -n` would run ({} when nothing is to be done)."""
    res = snakemake(workdir, "-n", target)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:", 1)[1]
    jobs = {}
    for line in stats.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m or m.group(1) == "total":
            break
        jobs[m.group(1)] = int(m.group(2))
    return jobs


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    config = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())
    wd = copy_workflow(tmp_path_factory.mktemp("wf"), config)
    res = snakemake(wd, TABLE)
    assert res.returncode == 0, res.stderr[-5000:]
    return wd, config


def set_config(wd: Path, config: dict) -> None:
    (wd / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_full_run_builds_the_table(workflow):
    wd, _ = workflow
    assert (wd / TABLE / "table1.md").exists()
    md = (wd / TABLE / "table1.md").read_text()
    assert "MLP" in md and "ScaleGMN" in md
    assert planned_jobs(wd) == {}
    # nothing of the resume machinery is left behind after success
    assert not list((wd / "results" / "train").rglob("last.pt"))


def test_readme_and_tests_change_nothing(workflow):
    wd, _ = workflow
    (wd / "README.md").write_text("changed\n")
    (wd / "tests").mkdir(exist_ok=True)
    (wd / "tests" / "test_new.py").write_text("def test_x():\n    pass\n")
    assert planned_jobs(wd) == {}


def test_reordering_config_keys_changes_nothing(workflow):
    """Every mapping reversed, except a table's columns and rows: their order is the layout."""
    wd, config = workflow

    def reverse(obj, key=""):
        if isinstance(obj, dict):
            keys = list(obj) if key in ("columns", "rows") else reversed(list(obj))
            return {k: reverse(obj[k], k) for k in keys}
        return obj
    set_config(wd, reverse(config))
    try:
        assert planned_jobs(wd) == {}
    finally:
        set_config(wd, config)


def test_one_models_hyperparameter_reruns_only_its_jobs(workflow):
    wd, config = workflow
    changed = json.loads(json.dumps(config))
    changed["tables"]["table1"]["rows"]["mlp"]["optim"] = {"lr": 0.01}
    set_config(wd, changed)
    try:
        res = snakemake(wd, "-n", TABLE)
        assert planned_jobs(wd) == {"train": 2, "table": 1}
        planned = re.findall(r"output: (results/train/\S+/metrics\.json)", res.stdout)
        assert planned and all("/mlp/" in p for p in planned)
    finally:
        set_config(wd, config)


def test_a_selection_builds_its_table_from_the_selected_cells(workflow):
    # The table rule's params are the table after `only=` (a KeyError on the unselected cells
    # before the fix); the trained cell is reused, only the table is rebuilt.
    wd, config = workflow
    res = snakemake(wd, TABLE, "--config", "only=table1:mnist:mlp:0")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    md = (wd / TABLE / "table1.md").read_text()
    assert "MLP" in md and "ScaleGMN" not in md
    assert not re.findall(r"rule train\b", res.stdout + res.stderr)
    res = snakemake(wd, TABLE)  # back to the whole table
    assert res.returncode == 0 and "ScaleGMN" in (wd / TABLE / "table1.md").read_text()


def test_canonicalization_change_reruns_only_that_zoo_from_canonicalize_on(workflow):
    wd, config = workflow
    changed = json.loads(json.dumps(config))
    changed["datasets"]["fmnist_inr"]["canonicalize"] = "phase"
    set_config(wd, changed)
    try:
        res = snakemake(wd, "-n", TABLE)
        jobs = planned_jobs(wd)
        assert jobs.get("train") == 2 and jobs.get("table") == 1
        assert jobs.get("canonicalize_dataset") == 1
        assert not {"build_standin", "ingest_dataset", "make_splits"} & set(jobs), jobs
        planned = re.findall(r"output: (results/train/\S+/metrics\.json)", res.stdout)
        assert planned and all("/fmnist/" in p for p in planned)
    finally:
        set_config(wd, config)


def test_model_code_change_makes_training_out_of_date(workflow):
    wd, _ = workflow
    models = wd / "scalegmn" / "models" / "metanetworks.py"
    original = models.read_text()
    models.write_text(original + "\n# a change to the model code\n")
    try:
        assert planned_jobs(wd) == {"train": 4, "table": 1}
    finally:
        models.write_text(original)
    # restoring the content makes it up to date again (checksums, not only mtimes)
    assert planned_jobs(wd) == {}


def test_killed_training_resumes_to_the_uninterrupted_result(workflow):
    wd, _ = workflow
    job = wd / "results/train/classification/mnist/scalegmn/seed0"
    reference = json.loads((job / "metrics.json").read_text())
    reference_history = (job / "history.csv").read_text()
    target = str((job / "metrics.json").relative_to(wd))

    killed = snakemake(wd, "--force", "--retries", "0", target, env={"SCALEGMN_STOP_AFTER_STEPS": "5"})
    assert killed.returncode != 0
    assert not (job / "metrics.json").exists()
    assert (job / ".resume" / "last.pt").exists()

    resumed = snakemake(wd, target)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((job / "metrics.json").read_text())
    assert 0 < result["resumed_from_step"] <= 5  # checkpoint_every_steps: 2, or an epoch end
    assert result["value"] == reference["value"]
    assert result["selected"] == reference["selected"]
    assert (job / "history.csv").read_text() == reference_history
    assert not (job / ".resume" / "last.pt").exists()
