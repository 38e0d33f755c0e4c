"""The cache benchmark runs end to end on a few networks and prints JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_cache_benchmark_prints_json_lines(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/cache_throughput.py"), "--n-inrs", "14", "--n-runs", "4",
         "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = {r["what"] for r in records}
    assert kinds == {"build_from_pth", "per_file_torch_load_epoch", "build_from_weights_npy", "load_split"}
    assert all(r["networks_per_s"] > 0 for r in records)
