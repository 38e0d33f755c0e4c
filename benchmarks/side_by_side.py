"""Run one benchmark script from two source trees alternately, in one run, so that their figures
share the machine's state (load, turbo, caches): a before/after comparison of a change.

Each round runs the script once from ``--before`` and once from ``--after`` (the order swaps every
round), each in a fresh process whose ``PYTHONPATH`` is that tree. Every JSON line the script
prints is passed through with ``tree`` (before|after) and ``round`` added; at the end one
``summary`` line per tree gives, for each numeric key named by ``--keys``, the median over rounds
(of the mean over the script's lines in that round).

Usage:
    git worktree add /tmp/before <rev>   # the tree to compare against
    python benchmarks/side_by_side.py --before /tmp/before --after . --rounds 3 \\
        --keys train_networks_per_s infer_networks_per_s -- benchmarks/model_throughput.py --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def run_tree(tree: Path, script: str, args: list[str]) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(tree / script), *args], env=env, capture_output=True,
                         text=True, check=True, cwd=tree)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", nargs="+", default=["train_networks_per_s"])
    parser.add_argument("script", help="path of the benchmark inside each tree")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    a = parser.parse_args(argv)
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    per_round: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for r in range(a.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for name in order:
            lines = run_tree(getattr(a, name).resolve(), a.script, args)
            for line in lines:
                print(json.dumps({"tree": name, "round": r, **line}), flush=True)
            for key in a.keys:
                values = [float(x[key]) for x in lines if isinstance(x.get(key), (int, float))]
                if values:
                    per_round[name].setdefault(key, []).append(statistics.fmean(values))
    for name, keys in per_round.items():
        print(json.dumps({"summary": name, "rounds": a.rounds,
                          **{k: statistics.median(v) for k, v in keys.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
