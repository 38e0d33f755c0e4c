"""Time the stand-in zoo builds: one JSON line per zoo on stdout.

Usage:
    python benchmarks/standin_generation.py [--size tiny|small|default] [--names NAME ...]
        [--threads N] [--out DIR]

Each line holds name, size, n_networks, wall seconds, CPU seconds of this process (less
sensitive to other load on a shared machine), the torch thread count and the quality figures
of the zoo's report. A last line sums the zoos.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from scalegmn.data.standins.zoos import SIZES, STANDINS, build_standin, default_root_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default", choices=tuple(SIZES))
    parser.add_argument("--names", nargs="+", default=list(STANDINS), choices=STANDINS)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the zoos here (default: temp)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="standins_bench_") as tmp:
        out = args.out or Path(tmp)
        total_wall = total_cpu = 0.0
        for name in args.names:
            wall, cpu = time.perf_counter(), time.process_time()
            report = build_standin(
                name, out / default_root_name(name), size=args.size, seed=args.seed
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            total_wall += wall
            total_cpu += cpu
            line = {
                "name": name,
                "size": args.size,
                "n_networks": report["n_networks"],
                "seconds": round(wall, 2),
                "cpu_seconds": round(cpu, 2),
                "threads": torch.get_num_threads(),
                "quality": report["quality"],
            }
            print(json.dumps(line), flush=True)
        print(
            json.dumps(
                {
                    "name": "total",
                    "size": args.size,
                    "seconds": round(total_wall, 2),
                    "cpu_seconds": round(total_cpu, 2),
                    "threads": torch.get_num_threads(),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
