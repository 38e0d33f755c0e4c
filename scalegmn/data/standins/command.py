"""``scalegmn standins``: build offline stand-in zoos in the real dataset formats.

Example: ``scalegmn standins mnist_inr svhn_gs --out data --size tiny`` writes
``data/mnist-inrs`` and ``data/svhn_cropped``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scalegmn.data.standins.zoos import SIZES, STANDINS, build_standin, default_root_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn standins`` arguments to ``parser``."""
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        choices=(*STANDINS, "all"),
        help=f"stand-ins to build: {', '.join(STANDINS)} or 'all'",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="folder that receives one dataset root per stand-in (e.g. OUT/mnist-inrs)",
    )
    parser.add_argument(
        "--size",
        default="default",
        choices=tuple(SIZES),
        help="how many networks: tiny (seconds, for tests), small, default, scale (the real sizes, "
             "random weights: data-path throughput only) (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Build the named stand-ins under ``args.out``, one summary line each; exit status 0."""
    names = STANDINS if "all" in args.names else tuple(dict.fromkeys(args.names))
    for name in names:
        root = args.out / default_root_name(name)
        report = build_standin(name, root, size=args.size, seed=args.seed)
        quality = ", ".join(f"{k}={v}" for k, v in report["quality"].items())
        print(
            f"{name}: {report['n_networks']} networks in {root} ({report['seconds']} s; {quality})"
        )
    return 0
