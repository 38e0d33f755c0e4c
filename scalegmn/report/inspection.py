"""``scalegmn inspect STORE [--json] [--render I --out FILE.png]``: what a cached store holds.

Prints the networks and architectures, every array (shape, dtype, chunks, shards, bytes stored
vs raw), the label or target distribution, per-layer weight/bias statistics, a
canonicalization check and the provenance attributes. ``--render I`` draws network I: the
image of an INR (scalegmn.weightspace.functional.render) or the kernels of a CNN.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from scalegmn.atomic import atomic_write
from scalegmn.data.cache import load_split
from scalegmn.errors import DataError
from scalegmn.weightspace.functional import render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn inspect`` arguments to ``parser``."""
    parser.add_argument("store", help="a cached split, e.g. results/cache/mnist/train.zarr")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--render", type=int, metavar="I", help="draw network I of the store")
    parser.add_argument("--out", type=Path, help="PNG file for --render")


def _arrays(group: zarr.Group, prefix: str = "") -> list[dict[str, Any]]:
    out = []
    with warnings.catch_warnings():  # Snakemake's .snakemake_timestamp file is not zarr
        warnings.simplefilter("ignore")
        members = sorted(group.members())
    for name, member in members:
        if isinstance(member, zarr.Group):
            out += _arrays(member, f"{prefix}{name}/")
            continue
        out.append({
            "name": f"{prefix}{name}",
            "shape": list(member.shape),
            "dtype": str(member.dtype),
            "chunks": list(member.chunks),
            "shards": None if member.shards is None else list(member.shards),
            "bytes_stored": int(member.nbytes_stored()),
            "bytes_raw": int(member.nbytes),
            "description": member.attrs.get("description", ""),
        })
    return out


def _distribution(split) -> dict[str, Any]:
    y = split.y.cpu()
    if split.task_kind == "classification":
        values, counts = torch.unique(y, return_counts=True)
        return {"kind": "classification", "counts": {int(v): int(c) for v, c in zip(values, counts, strict=True)}}
    if y.numel() == 0:
        return {"kind": "regression"}
    q = torch.quantile(y.double(), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    return {"kind": "regression", "mean": float(y.double().mean()),
            **{k: float(v) for k, v in zip(("min", "q25", "median", "q75", "max"), q, strict=True)}}


def _layer_stats(group) -> list[dict[str, Any]]:
    rows = []
    for i, (w, b) in enumerate(zip(group.weights[0], group.biases[0], strict=True)):
        w64, b64 = w.double(), b.double()
        rows.append({
            "layer": i,
            "weight_mean": float(w64.mean()) if w.numel() else math.nan,
            "weight_std": float(w64.std()) if w.numel() > 1 else math.nan,
            "weight_max_abs": float(w64.abs().max()) if w.numel() else math.nan,
            "bias_mean": float(b64.mean()) if b.numel() else math.nan,
            "bias_std": float(b64.std()) if b.numel() > 1 else math.nan,
            "bias_max_abs": float(b64.abs().max()) if b.numel() else math.nan,
        })
    return rows


def _canon_check(group) -> dict[str, Any]:
    spec = group.spec
    if spec.is_cnn or spec.activations[0] != "sine":
        return {"applies": False, "reason": "not a sine INR"}
    biases = group.biases[0][:-1]
    half = math.pi / spec.omega0 / 2
    max_abs = [float(b.abs().max()) if b.numel() else 0.0 for b in biases]
    return {
        "applies": True,
        "max_abs_hidden_bias": max_abs,
        "phase_canonical": all(m <= half + 1e-6 for m in max_abs),
        "sign_canonical": all(bool((b >= 0).all()) for b in biases),
        "original_script_is_identity": all(m <= math.pi / 2 for m in max_abs),
    }


def summarize(store: str | Path) -> dict[str, Any]:
    """Everything ``scalegmn inspect`` prints, as a JSON-able dict."""
    store = Path(store)
    if not store.exists():
        raise DataError(store, "no such store")
    split = load_split(store)  # first: a damaged store is a one-line DataError
    root = zarr.open_group(store, mode="r")
    groups = split.groups()
    return {
        "store": str(store),
        "networks": split.size,
        "architectures": [
            {"layout": list(g.spec.layout), "activations": list(g.spec.activations), "networks": g.size,
             "layer_stats": _layer_stats(g), "canonicalization_check": _canon_check(g)}
            for g in groups
        ],
        "task_kind": split.task_kind,
        "labels": _distribution(split),
        "mixed_activations": split.sign_mask is not None,
        "has_images": split.images is not None,
        "arrays": _arrays(root),
        "provenance": dict(root.attrs),
    }


def render_network(store: str | Path, index: int, out: str | Path) -> Path:
    """Draw network ``index``: INR image, or the first conv layer's kernels for a CNN."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    split = load_split(store)
    if not 0 <= index < split.size:
        raise DataError(store, f"--render {index}: the store holds networks 0..{split.size - 1}")
    group = split.groups()[int(split.arch_id[index])]
    pos = int(split.arch_pos[index])
    net = group.get([pos]).net
    spec = net.spec
    if spec.is_cnn:
        k = net.weights[0][0].double()  # (out, in, kh, kw)
        n = k.shape[0]
        cols = int(math.ceil(math.sqrt(n)))
        fig, axes = plt.subplots(cols, cols, figsize=(cols * 1.2, cols * 1.2))
        lim = float(k.abs().max()) or 1.0
        for j, ax in enumerate(np.atleast_1d(axes).ravel()):
            ax.axis("off")
            if j < n:
                ax.imshow(k[j, 0].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        fig.suptitle(f"network {index}: first conv layer kernels")
    else:
        shape = (28, 28) if spec.layout[-1] == 1 else (32, 32)
        img = render(net.to(torch.float64), shape)[0]  # (C, H, W)
        if spec.output_offset == 0.0:  # NFN convention: outputs in [-1, 1]
            img = (img + 1) / 2
        img = img.clamp(0, 1).permute(1, 2, 0).numpy()
        fig, axes = plt.subplots(1, 2 if split.images is not None else 1, figsize=(6, 3))
        axes = np.atleast_1d(axes)
        axes[0].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"INR {index} rendered")
        if split.images is not None:
            axes[1].imshow(split.images[index, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[1].set_title("original image")
        for ax in axes:
            ax.axis("off")
    out = Path(out)
    with atomic_write(out) as tmp:  # same file name: matplotlib picks the format from it
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def _print_text(s: dict[str, Any]) -> None:
    prov = s["provenance"]
    print(f"store: {s['store']}")
    print(f"view {prov.get('view')} / split {prov.get('split')} of dataset {prov.get('dataset')}: "
          f"{s['networks']} networks, task {s['task_kind']}")
    print(f"labels: {json.dumps(s['labels'])}")
    for a in s["architectures"]:
        print(f"architecture {a['layout']} {a['activations']}: {a['networks']} networks")
        for r in a["layer_stats"]:
            print(f"  layer {r['layer']}: weight mean {r['weight_mean']:+.4f} std {r['weight_std']:.4f} "
                  f"max|w| {r['weight_max_abs']:.4f}; bias mean {r['bias_mean']:+.4f} "
                  f"std {r['bias_std']:.4f} max|b| {r['bias_max_abs']:.4f}")
        print(f"  canonicalization check: {json.dumps(a['canonicalization_check'])}")
    print("arrays:")
    for arr in s["arrays"]:
        print(f"  {arr['name']:<22} {str(arr['shape']):<16} {arr['dtype']:<8} chunks {arr['chunks']} "
              f"shards {arr['shards']} stored {arr['bytes_stored']} B raw {arr['bytes_raw']} B")
    print("provenance:")
    for k, v in sorted(prov.items()):
        print(f"  {k}: {json.dumps(v)}")


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.store`` (text or JSON), or render one network; exit status 0."""
    if args.render is not None:
        if args.out is None:
            raise DataError(args.store, "--render needs --out FILE.png")
        print(render_network(args.store, args.render, args.out))
        return 0
    summary = summarize(args.store)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_text(summary)
    return 0
