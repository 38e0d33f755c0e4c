"""benchmarks/gpu_check.py runs on CPU (--quick, one preset) and prints every field the issue
lists, n/a fields marked; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_quick_on_cpu_prints_every_field():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--device", "cpu", "--quick",
         "--presets", "cifar10/scalegmn_relu", "--skip", "epoch"],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    by = {}
    for rec in lines:
        by.setdefault(rec["what"], []).append(rec)
    assert {"device", "matmul", "model", "data", "total"} <= set(by)
    assert by["device"][0]["name"] and by["device"][0]["memory_gb"] and by["device"][0]["quick"]
    mm = by["matmul"][0]
    assert mm["fp32_gflops"] > 0 and mm["bf16_gflops"] > 0 and mm["tf32_gflops"] is None and mm["tf32_note"]
    assert {r["precision"] for r in by["model"]} == {"float32", "bf16"}
    for rec in by["model"]:
        for key in ("train_networks_per_s", "infer_networks_per_s", "peak_mem_mb", "flops_per_network",
                    "matmul_fraction"):
            assert rec[key] > 0, (key, rec)
    assert {r["step"] for r in by["data"]} == {"write_store", "load_split_resident", "epoch_batches_resident",
                                               "epoch_batches_streamed"}


@pytest.mark.slow
def test_gpu_check_quick_epoch_projects_the_full_schedule():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--device", "cpu", "--quick",
         "--skip", "matmul", "model", "data"], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    epoch = next(json.loads(line) for line in proc.stdout.splitlines() if '"epoch"' in line)
    assert epoch["preset"] == "mnist_cls/scalegmn" and epoch["quick"] and epoch["paper_epochs"] == 200
    assert epoch["projected_full_schedule_hours"] > 0 and epoch["epoch_seconds_at_55000"] > 0
