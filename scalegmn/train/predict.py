"""``scalegmn predict CHECKPOINT INPUT --out FILE.csv``: apply a trained model to networks.

CHECKPOINT is a ``best.pt`` written by the train rule (results/train/<task>/<view>/<model>/seed<s>/).
INPUT is a cached split (a ``*.zarr`` store from the pipeline) or a folder holding a weight zoo
in any supported format (MNIST-/FMNIST-/CIFAR10-INRs, Small CNN Zoo), or one INR ``.pth`` file.
The CSV has one row per network: ``source``, the prediction, and the label/target when known.

- classification: ``prediction`` (class) and ``p_<class>`` probabilities;
- generalization: ``prediction`` = predicted test accuracy (sigmoid output);
- editing: ``edit_mse`` = MSE of the edited INR's render against the dilated target.

Raw zoos are used as read, without the canonicalization a cached store may have applied (the
shipped configs use ``canonicalize: none``); use the store of a view to get exactly what the
model was trained on.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

import numpy as np
import torch

from scalegmn.atomic import atomic_write
from scalegmn.data.cache import load_split
from scalegmn.data.formats.detect import FORMATS, detect_file_format, detect_format
from scalegmn.data.split_protocol import MemorySplit, MixedSplit, Split
from scalegmn.errors import DataError
from scalegmn.train import editing
from scalegmn.train.checkpoint import load_checkpoint
from scalegmn.train.setup import resolve_device
from scalegmn.weightspace.network import Network, NetworkSpec, is_odd, stack

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn predict`` arguments to ``parser``."""
    parser.add_argument("checkpoint", type=Path, help="best.pt written by the train rule")
    parser.add_argument("input", type=Path, help="a cached *.zarr split, a weight-zoo folder or one .pth file")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--batch-size", type=int, default=64, help="networks per forward pass (default 64)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")


def _read_zoo(path: Path, spec_expected: NetworkSpec) -> MemorySplit:
    """The networks of a folder or one .pth file, in the architecture of the checkpoint."""
    if path.is_file():
        fmt = detect_file_format(path)
        nets = [FORMATS[fmt].read_network(path)]
    else:
        fmt = detect_format(path)
        module = FORMATS[fmt]
        if fmt == "cnn_zoo":
            rows = module.open_weights(path)
            layout = module.read_layout(path)
            metrics = module.read_metrics(path)
            acts = metrics["config.activation"].astype(str).to_numpy()
            target = torch.as_tensor(metrics["test_accuracy"].to_numpy(dtype=np.float32))
            nets = []
            for act in sorted(set(acts)):
                rows_a = np.flatnonzero(acts == act)
                nets.append((rows_a, module.rows_to_network(np.asarray(rows[rows_a]), layout, act)))
            order = np.concatenate([r for r, _ in nets])
            spec = spec_expected
            weights = tuple(torch.cat([n.weights[i] for _, n in nets]) for i in range(spec.n_layers))
            biases = tuple(torch.cat([n.biases[i] for _, n in nets]) for i in range(spec.n_layers))
            odd = torch.tensor([is_odd(a) for a in acts[order]])
            net = Network(spec, weights, biases)
            sources = [f"{path}#{i}" for i in order]
            return MemorySplit(net, target[order], sources=sources, sign_mask=odd if len(set(acts)) > 1 else None)
        nets = [module.read_network(p) for p in module.list_files(path)]
    if not nets:
        raise DataError(path, "holds no networks")
    for n in nets:
        if n.spec.layout != spec_expected.layout:
            raise DataError(n.source, f"layout {n.spec.layout} differs from the model's {spec_expected.layout}")
    batch = stack([Network(spec_expected, n.weights, n.biases, source=n.source) for n in nets])
    labels = [n.label for n in nets]
    y = torch.as_tensor(labels) if all(v is not None for v in labels) else None
    return MemorySplit(batch, y, sources=[n.source for n in nets])


def _is_store(path: Path) -> bool:
    return path.is_dir() and (path.suffix == ".zarr" or (path / "zarr.json").exists())


def read_input(source: Path, ckpt: dict) -> Split:
    """The networks of ``source``: a cached store as stored, a zoo folder or ``.pth`` file in
    the checkpoint's architecture."""
    if _is_store(source):
        return load_split(source)
    mixed = _read_mixed(source)
    if mixed is not None:
        return mixed
    return _read_zoo(source, NetworkSpec.from_dict(ckpt["spec"]))


def _read_mixed(path: Path) -> MixedSplit | None:
    """A CNN Wild Park folder or checkpoint as stored (networks of many architectures, with
    their scores as targets), or None for the other formats."""
    is_park = detect_file_format(path) == "wild_park" if path.is_file() else detect_format(path) == "wild_park"
    if not is_park:
        return None
    module = FORMATS["wild_park"]
    nets = [module.read_network(p) for p in ([path] if path.is_file() else module.list_files(path))]
    if not nets:
        raise DataError(path, "holds no networks")
    return MixedSplit.from_networks(nets, y=torch.tensor([n.target for n in nets], dtype=torch.float32))


def predict_rows(checkpoint: Path, source: Path, batch_size: int = 64, device: str = "auto") -> list[dict]:
    """One CSV row per network of ``source`` (a store, a zoo folder or a ``.pth``), with the
    columns listed in the module docstring."""
    dev = resolve_device(device)
    model, ckpt = load_checkpoint(checkpoint, device=str(dev))
    task = ckpt["task"]
    if task == "embedding":
        raise DataError(checkpoint, "is an embedding checkpoint; use `scalegmn embed CHECKPOINT INPUT --out FILE.zarr`")
    data = read_input(source, ckpt)
    log.info("predicting %d networks from %s with %s (%s)", data.size, source, checkpoint, task)
    images = getattr(data, "images", None)
    out: list[dict] = []
    with torch.no_grad():
        for lo in range(0, data.size, batch_size):
            idx = torch.arange(lo, min(lo + batch_size, data.size))
            batch = data.get(idx).to(dev)
            # batch.index: a MixedBatch groups its rows by architecture, so its order is its own
            order = idx if batch.index is None else batch.index.cpu()
            rows = [{"source": data.sources[i]} for i in order.tolist()]
            if task == "classification":
                prob = torch.softmax(model(batch), dim=-1).cpu()
                for r, p in zip(rows, prob, strict=True):
                    r["prediction"] = int(p.argmax())
                    r.update({f"p_{c}": round(float(v), 6) for c, v in enumerate(p)})
            elif task == "generalization":
                pred = torch.sigmoid(model(batch)).reshape(-1).cpu()
                for r, p in zip(rows, pred, strict=True):
                    r["prediction"] = float(p)
            else:
                dw, db = model(batch)
                target = editing.dilate(editing.source_images(batch.net, images, batch.index))
                rendered = editing.render(editing.apply_delta(batch.net, dw, db), editing.IMAGE_SHAPE)
                for r, e in zip(rows, editing.per_image_mse(rendered, target).cpu(), strict=True):
                    r["edit_mse"] = float(e)
            if batch.y is not None:
                key = "target" if task == "generalization" else "label"
                for r, y in zip(rows, batch.y.cpu().tolist(), strict=True):
                    r[key] = y
            out.extend(rows)
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    """Write ``rows`` to ``path`` atomically; the columns are every key, in first-seen order."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def run(args: argparse.Namespace) -> int:
    """Predict ``args.input`` with ``args.checkpoint``, write the CSV ``args.out``; exit status 0."""
    rows = predict_rows(args.checkpoint, args.input, args.batch_size, args.device)
    write_csv(rows, args.out)
    print(f"wrote {len(rows)} predictions to {args.out}")
    return 0
