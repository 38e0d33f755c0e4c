"""What a weight file or zoo holds: format, architecture, counts, labels/targets, weight statistics."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from scalegmn.data.formats import cifar_inr, cnn_zoo, fmnist_inr, mnist_inr, wild_park
from scalegmn.data.formats.detect import FORMATS, detect_file_format, detect_format
from scalegmn.weightspace.network import Network, NetworkSpec, stack

logger = logging.getLogger(__name__)


def _evenly(n_items: int, sample: int) -> list[int]:
    """Up to ``sample`` indices spread evenly over ``range(n_items)`` (deterministic)."""
    if n_items <= sample:
        return list(range(n_items))
    return sorted(set(np.linspace(0, n_items - 1, sample).round().astype(int).tolist()))


def layer_statistics(net: Network) -> list[dict[str, Any]]:
    """Per layer: shapes and mean/std of the weights and biases over all networks of ``net``."""
    stats = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        w64, b64 = w.detach().double(), b.detach().double()
        stats.append(
            {
                "layer": i,
                "weight_shape": list(net.spec.weight_shape(i)),
                "weight_mean": float(w64.mean()),
                "weight_std": float(w64.std(unbiased=False)),
                "bias_mean": float(b64.mean()),
                "bias_std": float(b64.std(unbiased=False)),
            }
        )
    return stats


def _architecture(spec: NetworkSpec) -> dict[str, Any]:
    return {
        "layout": list(spec.layout),
        "activations": list(spec.activations),
        "layer_kinds": list(spec.layer_kinds),
        "num_params": spec.num_params,
    }


def _summarize_inr_root(fmt: str, root: Path, sample: int) -> dict[str, Any]:
    module = FORMATS[fmt]
    files = module.list_files(root)
    info: dict[str, Any] = {"n_networks": len(files)}
    if fmt == "mnist_inr":
        parsed = [mnist_inr.parse_path(p) for p in files]
        info["splits"] = dict(Counter(s for s, _, _ in parsed))
        info["labels"] = dict(sorted(Counter(lab for _, lab, _ in parsed).items()))
    elif fmt == "cifar_inr":
        info["labels"] = dict(sorted(Counter(cifar_inr.parse_path(p)[0] for p in files).items()))
        info["aug_copies"] = {
            k: len(cifar_inr.list_files(root, aug=k)) for k in cifar_inr.list_aug_copies(root)
        }
    elif fmt == "fmnist_inr":
        info["splits"] = dict(Counter(fmnist_inr.parse_path(p)[0] for p in files))
        if (root / fmnist_inr.SPLITS_FILE).is_file():
            info["splits_json"] = {k: len(v) for k, v in fmnist_inr.read_splits(root).items()}
    picked = [files[i] for i in _evenly(len(files), sample)]
    if not picked:
        return info
    logger.info("reading %d of %d networks for statistics", len(picked), len(files))
    nets = [module.read_network(p) for p in picked]
    if fmt == "fmnist_inr":  # labels live inside the files: report them for the sample
        info["labels_in_sample"] = dict(sorted(Counter(n.label for n in nets).items()))
    batch = stack(nets)
    info.update(_architecture(batch.spec))
    info["statistics_over"] = len(nets)
    info["layers"] = layer_statistics(batch)
    return info


def _summarize_zoo(root: Path, sample: int) -> dict[str, Any]:
    weights = cnn_zoo.open_weights(root)
    metrics = cnn_zoo.read_metrics(root)
    final = metrics[metrics["step"] == cnn_zoo.FINAL_STEP]
    acc = final["test_accuracy"].to_numpy(dtype=float)
    info: dict[str, Any] = {
        "n_networks": int(weights.shape[0]),
        "n_final_checkpoints": len(final),
        "activations_in_zoo": dict(Counter(metrics["config.activation"].astype(str))),
        "steps": sorted(int(s) for s in metrics["step"].unique()),
    }
    if acc.size:
        q = np.nanquantile(acc, [0.0, 0.25, 0.5, 0.75, 1.0])
        info["target_test_accuracy_final"] = dict(
            zip(("min", "q25", "median", "q75", "max"), (float(v) for v in q), strict=True)
        )
    rows = _evenly(weights.shape[0], sample)
    if rows:
        acts = metrics["config.activation"].astype(str)
        activation = acts.iloc[rows[0]] if acts.iloc[rows[0]] in ("relu", "tanh") else "relu"
        net = cnn_zoo.rows_to_network(weights[rows], cnn_zoo.read_layout(root), activation)
        info.update(_architecture(net.spec))
        info["activations"] = "per network: config.activation"
        info["statistics_over"] = len(rows)
        info["layers"] = layer_statistics(net)
    return info


def _summarize_wild_park(root: Path, sample: int) -> dict[str, Any]:
    """CNN Wild Park: counts, and architectures and scores over up to ``sample`` checkpoints."""
    files = wild_park.list_files(root)
    picked = [files[i] for i in _evenly(len(files), sample)]
    logger.info("reading %d of %d checkpoints", len(picked), len(files))
    nets = [wild_park.read_network(p) for p in picked]
    scores = np.array([n.target for n in nets], dtype=float)
    info: dict[str, Any] = {"n_networks": len(files), "runs": len({wild_park.run_of(p) for p in files}),
                            "statistics_over": len(nets), "n_architectures": len({n.spec for n in nets}),
                            "n_layers": dict(sorted(Counter(n.spec.n_layers for n in nets).items())),
                            "kernel_sizes": dict(sorted(Counter(n.spec.kernel_size[0] for n in nets).items())),
                            "with_residual": sum(bool(n.spec.residual) for n in nets)}
    if scores.size:
        q = np.quantile(scores, [0.0, 0.25, 0.5, 0.75, 1.0])
        info["target_test_accuracy"] = dict(zip(("min", "q25", "median", "q75", "max"), map(float, q), strict=True))
    if (root / wild_park.SPLITS_FILE).is_file():
        info["splits_json"] = {k: len(v.path) for k, v in wild_park.read_splits(root / wild_park.SPLITS_FILE).items()}
    return info


def summarize(path: str | Path, *, sample: int = 256) -> dict[str, Any]:
    """Describe a ``.pth`` network file or a dataset root (statistics over <= ``sample`` networks)."""
    path = Path(path)
    if path.is_file() and path.name == wild_park.FILE_NAME:
        net = wild_park.read_network(path)
        return {"path": str(path), "format": "wild_park", "n_networks": 1, "target": net.target,
                "meta": net.meta, **_architecture(net.spec), "residual": list(net.spec.residual),
                "layers": layer_statistics(net)}
    if path.is_file() and path.suffix == ".pth":
        fmt = detect_file_format(path)
        net = FORMATS[fmt].read_network(path)
        return {
            "path": str(path),
            "format": fmt,
            "n_networks": 1,
            "label": net.label,
            "meta": net.meta,
            **_architecture(net.spec),
            "layers": layer_statistics(net),
        }
    fmt = detect_format(path)
    if fmt == "wild_park":
        info = _summarize_wild_park(path, sample)
    else:
        info = _summarize_zoo(path, sample) if fmt == "cnn_zoo" else _summarize_inr_root(fmt, path, sample)
    return {"path": str(path), "format": fmt, **info}
