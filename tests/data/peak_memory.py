"""Peak memory of a step run in a fresh Python process (its VmHWM high-water mark, Linux)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def peak_increase_mb(child: str, *args: object) -> float:
    """Run ``child`` (a script printing a JSON line with ``before_mb`` and ``after_mb`` last) in a
    fresh interpreter with ``args``; the rise of its peak RSS in MB. One thread, and glibc's mmap
    threshold fixed so freed buffers return to the system as they would in a long job."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    proc = subprocess.run([sys.executable, "-c", child, *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    return rec["after_mb"] - rec["before_mb"]
