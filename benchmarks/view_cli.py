"""Shared command line of the per-view analysis scripts: ``[--cache DIR] [VIEW ...]``, one JSON
line per view."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_per_view(description: str, views: list[str],
                 measure: Callable[[Path, str], dict[str, Any]]) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("views", nargs="*", default=views)
    parser.add_argument("--cache", type=Path, default=Path("results/cache"))
    args = parser.parse_args()
    for view in args.views:
        print(json.dumps(measure(args.cache, view)), flush=True)
    return 0
