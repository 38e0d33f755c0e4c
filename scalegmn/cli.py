"""The ``scalegmn`` command. Each subcommand lives in the module that does its work.

Subcommands are registered as ``name -> (module, help)``; the module is imported only when its
subcommand runs, so ``scalegmn --help`` is instant. Each module provides
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from scalegmn import __version__
from scalegmn.errors import ScaleGMNError
from scalegmn.logs import FORMAT

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "standins": ("scalegmn.data.standins.command", "build the offline stand-in zoos in the real formats"),
    "init-dataset": ("scalegmn.data.formats.generic", "validate your own zoo (state dicts + manifest.csv) and write its config block"),
    "read": ("scalegmn.data.formats.command", "read a network file or zoo and print what it holds"),
    "inspect": ("scalegmn.report.inspection", "summarise a cached zarr store; render a network to PNG"),
    "predict": ("scalegmn.train.predict", "apply a trained checkpoint to a store or a zoo of networks"),
    "presets": ("scalegmn.models.catalogue", "list the model presets with their parameter counts"),
    "embed": ("scalegmn.train.embeddings", "embed networks with a checkpoint of the embedding task (zarr store)"),
    "search": ("scalegmn.train.search", "find the networks nearest to a query in an embedding store"),
    "verify": ("scalegmn.report.tables", "check that a results table is up to date with its metrics files"),
    "budget": ("scalegmn.report.budget", "a built table as fewer training steps would have given it (from the histories)"),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and one (still empty) subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="scalegmn",
        description="Scale Equivariant Graph Metanetworks: tools around the Snakemake pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"scalegmn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {
        name: sub.add_parser(name, help=help_text, description=help_text)
        for name, (_module, help_text) in SUBCOMMANDS.items()
    }
    return parser, subparsers


def main(argv: list[str] | None = None) -> int:
    """Run ``scalegmn COMMAND ...`` and return the exit status (2 on a ScaleGMNError)."""
    argv = sys.argv[1:] if argv is None else argv
    parser, subparsers = build_parser()
    # The subcommand is the first word naming one; its module then adds its own arguments
    # (before parsing, so `scalegmn inspect --help` lists them).
    command = next((a for a in argv if a in SUBCOMMANDS), None)
    if command is None:
        parser.parse_args(argv)  # handles --help / --version / errors
        parser.print_help()
        return 0
    module = importlib.import_module(SUBCOMMANDS[command][0])
    module.add_arguments(subparsers[command])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=FORMAT,
    )
    try:
        return int(module.run(args) or 0)
    except ScaleGMNError as err:
        print(f"scalegmn {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
