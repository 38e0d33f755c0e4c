"""Train many small zoo CNNs at once, each with its own hyperparameters (Small CNN Zoo stand-in).

Every run is a CNN of exactly :func:`scalegmn.network.cnn_zoo_spec` (4,970 parameters) trained
with Adam on its own random subset of the training images. All runs of one activation train
together: their convolutions are one grouped convolution (channels = run x channel), their
losses are summed (each run's gradient is its own) and Adam is elementwise with a per-run
learning rate, so a batched run equals a run trained alone.

Hyperparameters vary per run as in the real zoo (datasets.md §4.4): learning rate, init scale,
L2 weight decay, dropout and train fraction in {0.1, 0.25, 0.5, 1.0}. Checkpoints are taken at
the zoo's epochs {0, 1, 2, 3, 20, 40, 60, 80, 86}, mapped onto this run's step budget.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scalegmn.functional import cnn_forward
from scalegmn.network import Network, NetworkSpec, cnn_zoo_spec

logger = logging.getLogger(__name__)

#: Epochs at which the real zoo saved checkpoints (datasets.md §4.2); the last is 86.
CHECKPOINT_EPOCHS = (0, 1, 2, 3, 20, 40, 60, 80, 86)
TRAIN_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
#: Runs trained together; bounds memory and keeps the grouped convolutions cache-friendly.
CHUNK = 64
BATCH_SIZE = 16


@dataclass(frozen=True)
class RunConfigs:
    """Hyperparameters of R runs, one entry per run (all tensors have shape ``(R,)``)."""

    activation: tuple[str, ...]
    learning_rate: torch.Tensor
    init_std: torch.Tensor
    l2reg: torch.Tensor
    dropout: torch.Tensor
    train_fraction: torch.Tensor

    def __len__(self) -> int:
        return len(self.activation)

    def select(self, idx: torch.Tensor) -> RunConfigs:
        return RunConfigs(
            tuple(self.activation[i] for i in idx.tolist()),
            self.learning_rate[idx],
            self.init_std[idx],
            self.l2reg[idx],
            self.dropout[idx],
            self.train_fraction[idx],
        )


def sample_run_configs(n_runs: int, gen: torch.Generator) -> RunConfigs:
    """Random hyperparameters for ``n_runs`` runs: half relu, half tanh (shuffled).

    Ranges are wide on purpose, so final test accuracies spread from chance to good:
    learning rate log-uniform in [1e-3, 4e-2], init std log-uniform in [0.05, 0.5], L2
    log-uniform in [1e-8, 1e-3], channel dropout uniform in [0, 0.3], train fraction uniform
    over {0.1, 0.25, 0.5, 1.0}. (Wider ranges leave most runs at chance within the stand-in's
    short step budget.)
    """

    def log_uniform(lo: float, hi: float) -> torch.Tensor:
        u = torch.rand(n_runs, generator=gen, dtype=torch.float64)
        return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))

    is_tanh = torch.randperm(n_runs, generator=gen) < n_runs // 2
    fractions = torch.tensor(TRAIN_FRACTIONS, dtype=torch.float64)
    return RunConfigs(
        activation=tuple("tanh" if t else "relu" for t in is_tanh.tolist()),
        learning_rate=log_uniform(1e-3, 4e-2),
        init_std=log_uniform(0.05, 0.5),
        l2reg=log_uniform(1e-8, 1e-3),
        dropout=torch.rand(n_runs, generator=gen, dtype=torch.float64) * 0.3,
        train_fraction=fractions[torch.randint(0, len(fractions), (n_runs,), generator=gen)],
    )


def checkpoint_steps(train_steps: int) -> list[int]:
    """Optimizer steps at which the epochs of :data:`CHECKPOINT_EPOCHS` are saved.

    Epoch ``e`` maps to step ``round(e / 86 * train_steps)``, kept strictly increasing.
    """
    if train_steps < len(CHECKPOINT_EPOCHS) - 1:
        raise ValueError(f"train_steps={train_steps}: need at least {len(CHECKPOINT_EPOCHS) - 1}")
    steps: list[int] = []
    for epoch in CHECKPOINT_EPOCHS:
        s = round(epoch / CHECKPOINT_EPOCHS[-1] * train_steps)
        steps.append(max(s, steps[-1] + 1) if steps else s)
    steps[-1] = train_steps
    return steps


def init_cnns(spec: NetworkSpec, init_std: torch.Tensor, gen: torch.Generator) -> Network:
    """Normal(0, init_std) weights per run (the zoo's RandomNormal init), zero biases."""
    n = init_std.shape[0]
    weights, biases = [], []
    for layer in range(spec.n_layers):
        shape = spec.weight_shape(layer)
        w = torch.randn((n, *shape), generator=gen) * init_std.float().view(-1, *[1] * len(shape))
        weights.append(w)
        biases.append(torch.zeros(n, *spec.bias_shape(layer)))
    return Network(spec, weights, biases)


def _train_forward(
    spec: NetworkSpec,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    images: torch.Tensor,
    keep: torch.Tensor,
    gen: torch.Generator,
) -> torch.Tensor:
    """:func:`scalegmn.functional.cnn_forward` with channel dropout after every hidden conv.

    Shapes: images ``(B, M, 1, H, W)``, keep (keep probability per run) ``(B,)``;
    returns logits ``(B, M, 10)``.
    """

    def channel_dropout(h: torch.Tensor, layer: int) -> torch.Tensor:
        # A per-run keep probability: mask (M, B*C, 1, 1), one draw per channel and image.
        p = keep.repeat_interleave(spec.layout[layer + 1]).view(1, -1, 1, 1)
        mask = torch.rand((*h.shape[:2], 1, 1), generator=gen) < p
        return h * (mask / p)

    return cnn_forward(spec, tuple(weights), tuple(biases), images, after_conv=channel_dropout)


def evaluate(
    net: Network, images: torch.Tensor, labels: torch.Tensor, chunk: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy and mean cross-entropy of each CNN, ``(B,)`` each.

    ``images``/``labels``: ``(M, 1, H, W)``/``(M,)`` shared by all networks, or
    ``(B, M, 1, H, W)``/``(B, M)`` per network.
    """
    n_nets = net.batch_shape[0]
    correct = torch.zeros(n_nets)
    loss = torch.zeros(n_nets)
    shared = images.dim() == 4
    m = images.shape[0] if shared else images.shape[1]
    with torch.no_grad():
        for lo in range(0, m, chunk):
            if shared:
                x = images[lo : lo + chunk].expand(n_nets, -1, -1, -1, -1)
                y = labels[lo : lo + chunk].expand(n_nets, -1)
            else:
                x, y = images[:, lo : lo + chunk], labels[:, lo : lo + chunk]
            logits = cnn_forward(net.spec, net.weights, net.biases, x)  # (B, m, 10)
            correct += (logits.argmax(-1) == y).float().sum(1)
            loss += (
                F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
                .view(n_nets, -1)
                .sum(1)
            )
    return correct / m, loss / m


@dataclass(frozen=True)
class ZooCheckpoints:
    """All checkpoints of R runs: ``weights[l]`` is ``(R, 9, ...)``, metrics are ``(R, 9)``."""

    spec_by_run: tuple[NetworkSpec, ...]
    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    test_accuracy: torch.Tensor
    test_loss: torch.Tensor
    train_accuracy: torch.Tensor
    train_loss: torch.Tensor


def _train_group(
    configs: RunConfigs,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    train_steps: int,
    n_train_eval: int,
    gen: torch.Generator,
) -> tuple[list[Network], torch.Tensor]:
    """Train one chunk of runs sharing an activation; returns the 9 checkpoints as
    Networks ``(R,)`` and the metrics ``(4, R, 9)`` (test acc, test loss, train acc, train loss)."""
    spec = cnn_zoo_spec(configs.activation[0])
    n_runs, n_pool = len(configs), train_x.shape[0]
    net = init_cnns(spec, configs.init_std, gen)
    params = [t.clone().requires_grad_() for t in (*net.weights, *net.biases)]
    n_w = spec.n_layers
    # each run trains on its own random subset of the pool, sized by its train fraction
    subset = torch.argsort(torch.rand(n_runs, n_pool, generator=gen), dim=1)
    subset_size = (configs.train_fraction * n_pool).long().clamp_min(1)
    eval_idx = subset.gather(
        1, (torch.rand(n_runs, n_train_eval, generator=gen) * subset_size[:, None]).long()
    )
    lr = configs.learning_rate.float()
    l2 = configs.l2reg.float()
    keep = 1.0 - configs.dropout.float()
    m_state = [torch.zeros_like(p) for p in params]
    v_state = [torch.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-7
    ckpt_steps = checkpoint_steps(train_steps)
    checkpoints: list[Network] = []
    metrics = torch.zeros(4, n_runs, len(ckpt_steps))

    def save(k: int) -> None:
        snap = Network(
            spec,
            [p.detach().clone() for p in params[:n_w]],
            [p.detach().clone() for p in params[n_w:]],
        )
        checkpoints.append(snap)
        metrics[0, :, k], metrics[1, :, k] = evaluate(snap, test_x, test_y)
        metrics[2, :, k], metrics[3, :, k] = evaluate(snap, train_x[eval_idx], train_y[eval_idx])

    save(0)
    for step in range(1, train_steps + 1):
        pick = (torch.rand(n_runs, BATCH_SIZE, generator=gen) * subset_size[:, None]).long()
        idx = subset.gather(1, pick)  # (R, batch) indices into the pool
        logits = _train_forward(spec, params[:n_w], params[n_w:], train_x[idx], keep, gen)
        ce = F.cross_entropy(logits.flatten(0, 1), train_y[idx].flatten(), reduction="none")
        per_run = ce.view(n_runs, -1).mean(1)
        penalty = sum((w**2).flatten(1).sum(1) for w in params[:n_w])
        total = (per_run + l2 * penalty).sum()  # runs are independent: sum keeps gradients apart
        grads = torch.autograd.grad(total, params)
        bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step
        with torch.no_grad():
            for p, g, m_i, v_i in zip(params, grads, m_state, v_state, strict=True):
                m_i.mul_(beta1).add_(g, alpha=1.0 - beta1)
                v_i.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                step_size = (lr / bc1).view(-1, *[1] * (p.dim() - 1))
                p.sub_(step_size * m_i / ((v_i / bc2).sqrt_() + eps))
        if step in ckpt_steps:
            save(ckpt_steps.index(step))
    return checkpoints, metrics


def train_cnn_zoo(
    configs: RunConfigs,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    train_steps: int,
    gen: torch.Generator,
    n_train_eval: int = 64,
    chunk: int = CHUNK,
    label: str = "cnn zoo",
) -> ZooCheckpoints:
    """Train all runs and return their 9 checkpoints and metrics, in run order.

    Args:
        configs: hyperparameters of R runs (:func:`sample_run_configs`).
        train_x, train_y: training pool ``(N, 1, 32, 32)`` in [-1, 1] and labels ``(N,)``.
        test_x, test_y: test images and labels, shared by all runs.
        train_steps: Adam steps (batch 32) that stand for the zoo's 86 epochs.
        gen: random generator (subsets, minibatches, dropout, init).
        n_train_eval: training images per run on which train accuracy/loss are measured.
        chunk: runs trained together (speed only).

    Returns:
        :class:`ZooCheckpoints` with weights ``(R, 9, ...)`` and metrics ``(R, 9)``.
    """
    n_runs = len(configs)
    spec_by_run = tuple(cnn_zoo_spec(a) for a in configs.activation)
    shapes = [spec_by_run[0].weight_shape(i) for i in range(spec_by_run[0].n_layers)]
    b_shapes = [spec_by_run[0].bias_shape(i) for i in range(spec_by_run[0].n_layers)]
    n_ck = len(CHECKPOINT_EPOCHS)
    weights = [torch.zeros(n_runs, n_ck, *s) for s in shapes]
    biases = [torch.zeros(n_runs, n_ck, *s) for s in b_shapes]
    metrics = torch.zeros(4, n_runs, n_ck)
    start, done = time.monotonic(), 0
    for activation in ("relu", "tanh"):
        runs = torch.tensor(
            [i for i, a in enumerate(configs.activation) if a == activation], dtype=torch.long
        )
        for lo in range(0, len(runs), chunk):
            idx = runs[lo : lo + chunk]
            ckpts, m = _train_group(
                configs.select(idx),
                train_x,
                train_y,
                test_x,
                test_y,
                train_steps=train_steps,
                n_train_eval=n_train_eval,
                gen=gen,
            )
            for k, ck in enumerate(ckpts):
                for layer in range(len(shapes)):
                    weights[layer][idx, k] = ck.weights[layer]
                    biases[layer][idx, k] = ck.biases[layer]
            metrics[:, idx] = m
            done += len(idx)
            logger.info(
                "%s: trained %d/%d CNN runs (%.1f s); final test accuracy of this chunk %.2f-%.2f",
                label,
                done,
                n_runs,
                time.monotonic() - start,
                m[0, :, -1].min(),
                m[0, :, -1].max(),
            )
    return ZooCheckpoints(spec_by_run, tuple(weights), tuple(biases), *metrics)
