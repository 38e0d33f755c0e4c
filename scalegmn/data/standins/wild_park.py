"""The CNN Wild Park stand-in: small CNNs of varied architecture, trained, as Ray checkpoints.

Written through :mod:`scalegmn.data.formats.wild_park` in the real layout
(``<root>/<trial dir>/checkpoint_<epoch>/checkpoint.pt``, the OmegaConf config pickled under
the generator's class names) with Neural Graphs' split JSON ``cnn_park_splits.json``.

Architectures follow the generator's ``DEFAULT_CONFIG_OPTIONS`` (docs/datasets.md §5.3) made
smaller: 2-5 conv layers, channels from {4, 8, 16}, kernels {3, 5, 7}, stride 1, padding k//2,
an activation per layer from relu, gelu, tanh, sigmoid, leaky_relu and none, and a residual
connection into a layer (from a layer at least two before it) with probability 0.3; then GAP
and a linear layer to 10 classes.

Training differs from the real zoo's (CIFAR-10, AdamW lr 1e-3, 200 epochs, a checkpoint every
10) to fit a laptop: the colour glyphs of the CIFAR-10 INR stand-in
(:func:`scalegmn.data.standins.images.colour_glyph_images`) at 16x16, normalised by their
mean/std; AdamW, batch 32, ``train_steps`` steps, ``n_checkpoints`` evenly spaced checkpoints
(Ray's ``iteration`` is the checkpoint's epoch number). So that the score (test accuracy of
each checkpoint) spreads, each run also draws its learning rate (log-uniform 3e-4..1e-2), an
init scale (0.5..2 times PyTorch's default) and a label-noise fraction (0..0.6 of the training
labels replaced by random ones).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from scalegmn.data.formats import wild_park
from scalegmn.data.splits import split_runs
from scalegmn.data.standins import images as img
from scalegmn.weightspace.functional import cnn_forward
from scalegmn.weightspace.network import Network, NetworkSpec

logger = logging.getLogger(__name__)

CHANNELS = (4, 8, 16)
KERNELS = (3, 5, 7)
LAYERS = (2, 5)
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "leaky_relu", "identity")
RESIDUAL_P = 0.3
LR_RANGE = (1e-3, 3e-2)
INIT_SCALE_RANGE = (0.5, 2.0)
LABEL_NOISE_MAX = 0.6
BATCH = 32
IMAGE_SIZE = 16
SPLIT_FRACTIONS = (0.15, 0.2)  # val, test: fractions of the runs
ROOT_PREFIX = "cnn_wild_park"  # split-file paths are relative to the root's parent, as NG's


@dataclass(frozen=True)
class RunConfig:
    """One training run: its architecture and the hyperparameters that spread the scores."""

    spec: NetworkSpec
    lr: float
    init_scale: float
    label_noise: float


def sample_spec(gen: torch.Generator) -> NetworkSpec:
    """A random Wild Park architecture (module docstring)."""
    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=gen))]

    n = int(torch.randint(LAYERS[0], LAYERS[1] + 1, (1,), generator=gen))
    channels = [3] + [pick(CHANNELS) for _ in range(n)]
    k = pick(KERNELS)
    acts = [pick(ACTIVATIONS) for _ in range(n)]
    residual = [-1] * n
    for i in range(2, n):
        if float(torch.rand((), generator=gen)) < RESIDUAL_P:
            residual[i] = int(torch.randint(0, i - 1, (1,), generator=gen))
    return NetworkSpec((*channels, 10), (*acts, "identity"), layer_kinds=("conv",) * n + ("linear",),
                       kernel_size=(k, k), conv_padding=k // 2, residual=(*residual, -1))


def sample_run(gen: torch.Generator) -> RunConfig:
    """A random architecture and training hyperparameters."""
    spec = sample_spec(gen)
    lo, hi = math.log(LR_RANGE[0]), math.log(LR_RANGE[1])
    lr = math.exp(lo + (hi - lo) * float(torch.rand((), generator=gen)))
    scale = INIT_SCALE_RANGE[0] + (INIT_SCALE_RANGE[1] - INIT_SCALE_RANGE[0]) * float(torch.rand((), generator=gen))
    noise = LABEL_NOISE_MAX * float(torch.rand((), generator=gen))
    return RunConfig(spec, lr, scale, noise)


def init_network(spec: NetworkSpec, scale: float, gen: torch.Generator) -> Network:
    """PyTorch's default conv/linear init (U(+-1/sqrt(fan_in)) for weights and biases), times ``scale``."""
    weights, biases = [], []
    for i in range(spec.n_layers):
        shape = spec.weight_shape(i)
        bound = scale / math.sqrt(math.prod(shape[1:]))
        weights.append((torch.rand(shape, generator=gen) * 2 - 1) * bound)
        biases.append((torch.rand(spec.bias_shape(i), generator=gen) * 2 - 1) * bound)
    return Network(spec, weights, biases)


def images(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` colour glyphs ``(n, 3, 16, 16)`` in [0, 1] and their labels."""
    x, y = img.colour_glyph_images(n, gen)
    x = x.permute(0, 3, 1, 2).to(torch.float32) / 255.0
    return F.avg_pool2d(x, 32 // IMAGE_SIZE), y


def accuracy(net: Network, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy of one network."""
    with torch.no_grad():
        return float((cnn_forward(net.spec, net.weights, net.biases, x).argmax(-1) == y).float().mean())


def train_run(cfg: RunConfig, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
              steps: int, n_checkpoints: int, gen: torch.Generator) -> list[tuple[int, Network, dict[str, Any], float]]:
    """Train one run; ``(epoch, network, optimizer state, test accuracy)`` per checkpoint."""
    net = init_network(cfg.spec, cfg.init_scale, gen)
    params = [t.clone().requires_grad_(True) for t in (*net.weights, *net.biases)]
    n_layers = cfg.spec.n_layers
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    x, y = train
    y = y.clone()
    noisy = torch.rand(len(y), generator=gen) < cfg.label_noise
    y[noisy] = torch.randint(0, 10, (int(noisy.sum()),), generator=gen)
    at = {round(steps * (c + 1) / n_checkpoints) for c in range(n_checkpoints)}
    out = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (BATCH,), generator=gen)
        logits = cnn_forward(cfg.spec, tuple(params[:n_layers]), tuple(params[n_layers:]), x[idx])
        loss = F.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in at:
            done = Network(cfg.spec, tuple(p.detach().clone() for p in params[:n_layers]),
                           tuple(p.detach().clone() for p in params[n_layers:]))
            if done.non_finite() is None:
                out.append((len(out) + 1, done, opt.state_dict(), accuracy(done, *test)))
    return out


def build(root: Path, counts: dict[str, int], gen: torch.Generator) -> dict[str, Any]:
    """Write the stand-in zoo into ``root``; returns the report's fields (quality: score spread)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    x, y = images(counts["n_pool"] + counts["n_test_images"], gen)
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
    x = (x - mean) / std  # as the generator normalises CIFAR-10
    n_pool = counts["n_pool"]
    train, test = (x[:n_pool], y[:n_pool]), (x[n_pool:], y[n_pool:])
    tag = f"{int(torch.randint(16**5, (1,), generator=gen)):05x}"
    entries: list[tuple[str, str, float, int]] = []  # run, relpath, score, step
    specs, scores = set(), []
    for r in range(counts["n_runs"]):
        cfg = sample_run(gen)
        run = f"TrainCNN_{tag}_{r:05d}"
        for epoch, net, opt_state, acc in train_run(cfg, train, test, counts["train_steps"],
                                                    counts["n_checkpoints"], gen):
            ck_dir = f"checkpoint_{epoch:06d}"
            wild_park.write_network(root, net, run=run, checkpoint=ck_dir, score=acc, iteration=epoch,
                                    optimizer=opt_state, extra_result={"lr": cfg.lr, "label_noise": cfg.label_noise})
            entries.append((run, f"{ROOT_PREFIX}/{run}/{ck_dir}/{wild_park.FILE_NAME}", acc, epoch))
            scores.append(acc)
        specs.add(cfg.spec.key())
        if (r + 1) % 10 == 0 or r + 1 == counts["n_runs"]:
            logger.info("trained %d/%d runs", r + 1, counts["n_runs"])
    by_run = split_runs([e[0] for e in entries], SPLIT_FRACTIONS, int(torch.randint(2**31, (1,), generator=gen)))
    splits = {}
    for name in ("train", "val", "test"):
        rows = [e for e in entries if by_run[e[0]] == name]
        order = torch.randperm(len(rows), generator=gen).tolist()  # NG shuffles within a split
        rows = [rows[i] for i in order]
        splits[name] = wild_park.SplitEntry([e[1] for e in rows], [e[2] for e in rows], [e[3] for e in rows])
    wild_park.write_splits(root / wild_park.SPLITS_FILE, splits)
    s = np.asarray(scores, dtype=np.float64)
    q = np.quantile(s, [0.0, 0.25, 0.5, 0.75, 1.0]) if s.size else np.zeros(5)
    return {
        "n_networks": len(entries),
        "n_runs": counts["n_runs"],
        "quality": {"n_architectures": len(specs), "score_std": round(float(s.std()), 4) if s.size else 0.0,
                    "score": {k: round(float(v), 4) for k, v in zip(("min", "q25", "median", "q75", "max"), q,
                                                                       strict=True)},
                    "split_checkpoints": {k: len(v.path) for k, v in splits.items()}},
    }


#: The builders of this module, by stand-in name.
BUILDERS = {"cnn_wild_park": build}
