"""Your own zoo: a folder of PyTorch state dicts or safetensors files plus ``manifest.csv``
(docs/datasets.md §12).

``manifest.csv`` columns: ``file`` (path relative to the folder), then ``label`` (an int class:
classification) or ``target`` (a float: regression, as generalization prediction), optionally
``split`` (train | val | test; without it a seeded 80/10/10 draw) and ``activation`` (the hidden
activation of every network: relu (default), tanh, sine).

A network file holds its layers in order, each a weight (``(out, in)`` linear or
``(out, in, kh, kw)`` conv) optionally followed by its bias (a missing bias is zero); key names
do not matter (``0.weight``, ``fc1.weight``, ``net.2.linear.weight`` ...), non-tensor entries
(a ``label``, say) are ignored. Conv layers come first; a linear layer after them sees the
globally average-pooled channels (the Small CNN Zoo's convention). Every network of one zoo has
one layout.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scalegmn.data.formats.torchfile import load_state_dict, save_state_dict
from scalegmn.data.network_set import read_network_set
from scalegmn.data.splits import read_splits
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, NetworkSpec

MANIFEST = "manifest.csv"
SPLIT_NAMES = ("train", "val", "test")
ACTIVATIONS = ("relu", "tanh", "sine")
SUFFIXES = (".pt", ".pth", ".safetensors")


@dataclass(frozen=True)
class Entry:
    """One manifest row: the file, its label or target, split (or None) and activation."""

    file: Path
    label: int | None
    target: float | None
    split: str | None
    activation: str


def read_manifest(root: str | Path) -> list[Entry]:
    """The rows of ``<root>/manifest.csv``, checked; DataError naming the row and what to fix."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise DataError(path, "no manifest.csv: write one with the columns file, label (or target), "
                              "optionally split and activation (docs/datasets.md §12)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in reader.fieldnames or []]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    if "file" not in cols:
        raise DataError(path, f"no 'file' column (columns: {cols})")
    if ("label" in cols) == ("target" in cols):
        raise DataError(path, "give exactly one of the columns 'label' (classification) or 'target' (regression)")
    if not rows:
        raise DataError(path, "lists no network")
    out = []
    for i, r in enumerate(rows, start=2):  # line 1 is the header
        where = f"{path}:{i}"
        file = root / r["file"]
        if file.suffix not in SUFFIXES:
            raise DataError(where, f"file {r['file']!r} is not one of {', '.join(SUFFIXES)}")
        label = target = None
        try:
            if "label" in cols:
                label = int(r["label"])
                if label < 0:
                    raise ValueError
            else:
                target = float(r["target"])
                if not math.isfinite(target):
                    raise ValueError
        except ValueError:
            what = "label must be an int >= 0" if "label" in cols else "target must be a finite number"
            raise DataError(where, f"{what}, found {r.get('label', r.get('target'))!r}") from None
        split = r.get("split") or None
        if split is not None and split not in SPLIT_NAMES:
            raise DataError(where, f"split {split!r}: use train, val or test (or leave it empty)")
        act = r.get("activation") or "relu"
        if act not in ACTIVATIONS:
            raise DataError(where, f"activation {act!r}: use one of {', '.join(ACTIVATIONS)}")
        out.append(Entry(file, label, target, split, act))
    if len({e.activation for e in out}) > 1:
        raise DataError(path, "networks of several activations in one zoo; make one dataset per activation")
    if any(e.split for e in out) and not all(e.split for e in out):
        raise DataError(path, "give a split for every network or for none")
    return out


def load_tensors(path: str | Path) -> dict[str, Any]:
    """The tensors of a ``.pt``/``.pth`` state dict or a ``.safetensors`` file, in file order."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return load_state_dict(path)
    try:
        from safetensors.torch import load_file  # optional dependency, only for .safetensors
    except ImportError:
        raise DataError(path, "reading .safetensors needs the package safetensors (pip install safetensors)") from None
    if not path.is_file():
        raise DataError(path, "file not found (listed in manifest.csv)")
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as err:  # any failure here means the file is unusable
        raise DataError(path, f"not a readable safetensors file: {' '.join(str(err).split())[:200]}") from None


def _natural(key: str) -> list:
    """Sort key that orders ``layers.2`` before ``layers.10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def network_from_tensors(path: str | Path, sd: dict[str, Any], activation: str) -> Network:
    """The network a state dict holds (layers in key order; see the module doc).

    Tensors are grouped by module (the key without its last part: ``fc1`` of ``fc1.weight``):
    each group is one layer, a 2-D or 4-D weight and optionally a 1-D bias. Groups keep the
    file's order; safetensors files store keys sorted, so theirs are ordered naturally
    (``layers.2`` before ``layers.10``).
    """
    groups: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    for key, value in sd.items():
        if not (isinstance(value, torch.Tensor) and value.is_floating_point()):
            continue
        kind = "weight" if value.dim() in (2, 4) else "bias" if value.dim() == 1 else None
        group = groups.setdefault(key.rpartition(".")[0], {})
        if kind is None or kind in group:
            raise DataError(path, f"key '{key}' of shape {list(value.shape)} is neither a layer weight "
                                  "(2-D linear, 4-D conv) nor its module's one bias")
        group[kind] = (key, value)
    order = sorted(groups, key=_natural) if Path(path).suffix == ".safetensors" else list(groups)
    weights: list[torch.Tensor] = []
    biases: list[torch.Tensor | None] = []
    for name in order:
        group = groups[name]
        if "weight" not in group:
            key, value = group["bias"]
            raise DataError(path, f"key '{key}' of shape {list(value.shape)} is a bias without a weight in '{name}'")
        w = group["weight"][1]
        b = group.get("bias")
        if b is not None and b[1].shape[0] != w.shape[0]:
            raise DataError(path, f"key '{b[0]}' has {b[1].shape[0]} entries, its weight {w.shape[0]} outputs")
        weights.append(w)
        biases.append(None if b is None else b[1])
    if not weights:
        raise DataError(path, "holds no layer weights (2-D or 4-D float tensors)")
    kinds = ["conv" if w.dim() == 4 else "linear" for w in weights]
    layout = [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]
    for i, w in enumerate(weights[1:], start=1):
        if w.shape[1] != weights[i - 1].shape[0]:
            raise DataError(path, f"layer {i} takes {w.shape[1]} inputs but layer {i - 1} gives {weights[i - 1].shape[0]}")
    kernels = {tuple(w.shape[2:]) for w in weights if w.dim() == 4}
    if len(kernels) > 1:
        raise DataError(path, f"conv kernels of several sizes {sorted(kernels)}; one size per zoo")
    try:
        spec = NetworkSpec(layout=tuple(layout), activations=(activation,) * (len(weights) - 1) + ("identity",),
                           layer_kinds=tuple(kinds), kernel_size=next(iter(kernels)) if kernels else None)
    except ValueError as err:
        raise DataError(path, str(err)) from None
    bias = [b if b is not None else torch.zeros(w.shape[0]) for w, b in zip(weights, biases, strict=True)]
    net = Network(spec, tuple(w.detach().float().contiguous() for w in weights),
                  tuple(b.detach().float().contiguous() for b in bias), source=str(path))
    where = net.non_finite()
    if where is not None:
        raise DataError(path, f"{where} holds NaN or Inf")
    return net


def read_network(entry: Entry) -> Network:
    """The network of one manifest row, with its label or target and split."""
    net = network_from_tensors(entry.file, load_tensors(entry.file), entry.activation)
    return net.replace(label=entry.label, target=entry.target, meta={"split": entry.split or ""})


def write_network(root: str | Path, name: str, net: Network) -> Path:
    """Write one network as a plain state dict ``<root>/<name>.pt`` (``<i>.weight``, ``<i>.bias``)."""
    sd = {}
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        sd[f"{i}.weight"], sd[f"{i}.bias"] = w.clone(), b.clone()
    path = Path(root) / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, sd)
    return path


def write_manifest(root: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``<root>/manifest.csv`` from dicts with the keys file, label or target, split, activation."""
    path = Path(root) / MANIFEST
    fields = [k for k in ("file", "label", "target", "split", "activation") if any(k in r for r in rows)]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def validate(root: str | Path) -> dict[str, Any]:
    """Read every network the manifest lists; the zoo's summary (DataError at the first problem)."""
    entries = read_manifest(root)
    spec = None
    for e in entries:
        net = read_network(e)
        if spec is None:
            spec = net.spec
        elif net.spec != spec:
            raise DataError(e.file, f"layout {list(net.spec.layout)} differs from the first network's "
                                    f"{list(spec.layout)}; one layout per zoo")
    task = "classification" if entries[0].label is not None else "regression"
    splits = {s: sum(e.split == s for e in entries) for s in SPLIT_NAMES} if entries[0].split else None
    return {"n_networks": len(entries), "task": task, "activation": entries[0].activation,
            "layout": list(spec.layout), "layer_kinds": list(spec.layer_kinds),
            "n_classes": max(e.label for e in entries) + 1 if task == "classification" else None,
            "splits": splits}


#: Folders of results/ that a table of the same name would shadow.
RESERVED = ("data", "cache", "train", "logs", "benchmarks", "tracking")


def config_block(name: str, root: str | Path, summary: dict[str, Any]) -> str:
    """The config.yaml block (dataset, view, a quick table of that name) for a validated zoo."""
    classification = summary["task"] == "classification"
    act = summary["activation"]
    if classification:
        task, preset, what = "classification", "mnist_cls/scalegmn", "test accuracy"
        column_model = " model: {symmetry: scale}," if act == "relu" else ""  # the preset is for sine INRs
    else:
        task, what = "generalization", "test Kendall tau"
        preset = "cifar10/scalegmn_relu" if act == "relu" else "cifar10/scalegmn_tanh"
        column_model = ""
    first_row = "mlp: {label: MLP, model: {kind: mlp}}" if classification else "statnn: {label: StatNN, model: {kind: statnn}}"
    return f"""# Written by `scalegmn init-dataset`: {summary['n_networks']} networks, layout {summary['layout']},
# {act}, {task}{f" ({summary['n_classes']} classes)" if classification else ""}. Use it with
#   snakemake --configfile THIS_FILE results/{name} --cores 2
# or copy it into config.yaml. The table's model/optim are quick settings; edit them freely.
datasets:
  {name}: {{format: generic, source: local, local: {{path: {Path(root).resolve()}}}}}
views:
  {name}: {{dataset: {name}}}
tables:
  {name}:
    title: "{name}: {task} ({what})"
    task: {task}
    seeds: [0]
    model: {{n_layers: 3, d_hid: 16, dropout: 0.0, input_scaling: rms}}
    optim: {{epochs: null, max_steps: 200, eval_every_steps: 50, batch_size: 32, warmup_steps: 20, lr: 0.003}}
    columns:
      {name}: {{label: {name}, preset: {preset},{column_model} real: true}}
    rows:
      {first_row}
      scalegmn: {{label: ScaleGMN}}
"""


def add_arguments(parser) -> None:
    """Arguments of ``scalegmn init-dataset``."""
    parser.add_argument("folder", help="the zoo's folder (holding manifest.csv and the network files)")
    parser.add_argument("--name", help="dataset, view and table name (default: the folder's name)")
    parser.add_argument("--out", help="write the config block to this YAML file (default: print it)")


def run(args) -> int:
    """Validate a zoo folder (read every network) and write or print its config block."""
    root = Path(args.folder)
    name = args.name or "".join(c if c.isalnum() else "_" for c in root.resolve().name).strip("_") or "my_zoo"
    if not name.isidentifier() or name in RESERVED:
        raise DataError(root, f"name {name!r}: use letters, digits and '_' (not {', '.join(RESERVED)}); pass --name")
    summary = validate(root)
    block = config_block(name, root, summary)
    if args.out:
        Path(args.out).write_text(block)
        print(f"{root}: {summary['n_networks']} networks, layout {summary['layout']}; config block -> {args.out}")
    else:
        print(block, end="")
    return 0


def export(table_path: str | Path, splits_path: str | Path, out: str | Path) -> Path:
    """Write an ingested weight table (``results/data/<ds>/weights.h5``) as a generic zoo in ``out``:
    one state dict per network in table row order, and a manifest with its label (or target),
    its split from ``splits.json`` and its activation. Ingesting ``out`` gives the same rows.

    Used to check that the generic format gives the same table as a dataset's own format.
    """
    table = read_network_set(table_path)
    splits = read_splits(splits_path)
    split_of = {int(r): name for name in SPLIT_NAMES for r in splits[name]}
    if len(split_of) != table.size:
        raise DataError(splits_path, "splits do not cover every row once (augmented copies cannot be exported)")
    net = table.network()
    act = net.spec.hidden_activation
    regression = table.attrs.get("format") == "cnn_zoo" or table.attrs.get("task_kind") == "regression"
    rows = []
    out = Path(out)
    for i in range(table.size):
        one = Network(net.spec, tuple(w[i] for w in net.weights), tuple(b[i] for b in net.biases))
        path = write_network(out / "nets", f"net{i:06d}", one)
        value = ({"target": float(table.columns["target"][i])} if regression
                 else {"label": int(table.columns["label"][i])})
        rows.append({"file": str(path.relative_to(out)), **value, "split": split_of[i], "activation": act})
    return write_manifest(out, rows)
