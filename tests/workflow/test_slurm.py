"""The SLURM profile on a real single-node SLURM cluster (loopback, one fake GPU).

Opt-in: runs when SCALEGMN_TEST_SLURM=1 (CI sets it) as root on Debian/Ubuntu (apt installs
slurmctld/slurmd/munge the first time). tests/slurm/slurm-up.sh starts the cluster and
tests/slurm/slurm-down.sh stops it whatever happens. The data stages of a tiny config run
locally first; then `snakemake --profile profiles/slurm` submits the training jobs (which must
ask for a GPU) and the table job, and must finish with the table.
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

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(os.environ.get("SCALEGMN_TEST_SLURM") != "1", reason="set SCALEGMN_TEST_SLURM=1 (needs root)"),
]


def _copy_workflow(dest: Path, config: dict) -> None:
    shutil.copy2(REPO / "Snakefile", dest / "Snakefile")
    for name in ("rules", "workflow_scripts", "report", "profiles", "envs"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name)
    shutil.copytree(REPO / "scalegmn", dest / "scalegmn", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_slurm_profile_runs_training_on_a_gpu_through_to_the_table(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root")
    config = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())
    table = config["tables"]["table1"]
    table["seeds"] = [0]
    table["columns"] = {"mnist": table["columns"]["mnist"]}
    config["datasets"] = {"mnist_inr": config["datasets"]["mnist_inr"]}
    config["views"] = {"mnist": config["views"]["mnist"]}
    _copy_workflow(tmp_path, config)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    up = subprocess.run(["bash", str(REPO / "tests/slurm/slurm-up.sh")], env={**env, "SLURM_SMOKE_TEST": "0"},
                        capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        # data stages locally (fast, no GPU); the cluster gets the training and the table
        local = subprocess.run([SNAKEMAKE, "--cores", "2", "--omit-from", "train", "results/table1"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert local.returncode == 0, local.stderr[-3000:]
        # timeout: without squeue status checks the plugin can wait forever (slurm-local.md)
        run = subprocess.run(
            ["timeout", "-k", "20", "240", SNAKEMAKE, "--profile", "profiles/slurm", "results/table1"],
            cwd=tmp_path, env=env, capture_output=True, text=True,
        )
        log = run.stdout + run.stderr
        assert run.returncode == 0, log[-5000:]
        assert (tmp_path / "results/table1/table1.md").exists()
        # what SLURM itself recorded for each submitted job (no accounting: scontrol, MinJobAge=600)
        submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/", log)
        assert {rule for _, rule in submitted} == {"train", "table"}, submitted
        for job_id, rule in submitted:
            info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
            assert ("TresPerJob=gres:gpu:1" in info) == (rule == "train"), info
        for metrics in (tmp_path / "results/train").rglob("metrics.json"):
            env_seen = json.loads(metrics.read_text())["environment"]
            assert env_seen.get("SLURM_JOB_ID"), metrics
            assert env_seen.get("SLURM_GPUS_ON_NODE") == "1", env_seen
            assert env_seen.get("CUDA_VISIBLE_DEVICES") == "0", env_seen
    finally:
        subprocess.run(["bash", str(REPO / "tests/slurm/slurm-down.sh")], capture_output=True, text=True, timeout=120)
