"""``scalegmn read PATH``: print what a network file or a weight zoo holds."""

from __future__ import annotations

import argparse
import json
from typing import Any

from scalegmn.data.formats.summary import summarize


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn read`` arguments to ``parser``."""
    parser.add_argument("path", help="a .pth network file or a dataset root folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--sample",
        type=_positive_int,
        default=256,
        metavar="N",
        help="compute weight statistics over at most N networks, spread evenly (default 256)",
    )


def _rounded(value: Any) -> Any:
    """Floats to 4 significant digits, inside dicts and lists too (text output only)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _format_text(info: dict) -> str:
    lines = [f"{info['path']}", f"  format: {info['format']}"]
    skip = {"path", "format", "layers"}
    for key, value in info.items():
        if key not in skip:
            lines.append(f"  {key}: {_rounded(value)}")
    if info.get("layers"):
        lines.append("  layer  weight shape      weight mean/std         bias mean/std")
        for s in info["layers"]:
            shape = "x".join(str(n) for n in s["weight_shape"])
            lines.append(
                f"  {s['layer']:>5}  {shape:<16}  {s['weight_mean']:+.4f} / {s['weight_std']:.4f}"
                f"       {s['bias_mean']:+.4f} / {s['bias_std']:.4f}"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.path`` (text, or one JSON object); exit status 0."""
    info = summarize(args.path, sample=args.sample)
    print(json.dumps(info) if args.json else _format_text(info))
    return 0
