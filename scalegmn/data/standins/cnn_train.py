"""Train many small zoo CNNs at once, each with its own hyperparameters (Small CNN Zoo stand-in).

Every run is a CNN of exactly :func:`scalegmn.weightspace.network.cnn_zoo_spec` (4,970 parameters) trained
on its own random subset of the training images. All runs of one activation train together:
their convolutions are one grouped convolution (channels = run x channel), their losses are
summed (each run's gradient is its own) and the optimizers (Adam, RMSProp, SGD) are elementwise
with per-run settings, so a batched run equals a run trained alone.

Hyperparameters are drawn per run from the real zoo's distributions
(:mod:`scalegmn.data.standins.cnn_reference`: Unterthiner et al. 2020, Sec. 3, and docs/datasets.md §4):
optimizer, learning rate, L2, dropout, weight initializer and its std, train fraction and
activation. Checkpoints are taken at the zoo's epochs {0, 1, 2, 3, 20, 40, 60, 80, 86}, mapped
onto this run's step budget.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scalegmn.data.standins.cnn_reference import REAL_HYPERPARAMETERS
from scalegmn.weightspace.functional import cnn_forward
from scalegmn.weightspace.network import Network, NetworkSpec, cnn_zoo_spec

logger = logging.getLogger(__name__)

#: Epochs at which the real zoo saved checkpoints (docs/datasets.md §4.2); the last is 86.
CHECKPOINT_EPOCHS = (0, 1, 2, 3, 20, 40, 60, 80, 86)
TRAIN_FRACTIONS = tuple(REAL_HYPERPARAMETERS["train_fraction"]["choices"])
OPTIMIZERS = tuple(REAL_HYPERPARAMETERS["optimizer"]["choices"])
#: The real zoo's initializers except ``Constant`` (its value is not recorded, and equal
#: weights leave the 16 channels of a layer identical, so such a run is a 1-channel CNN).
W_INITS = ("RandomNormal", "TruncatedNormal", "Orthogonal", "GlorotNormal", "GlorotUniform")
#: Runs trained together; bounds memory and keeps the grouped convolutions cache-friendly
#: (on a 1 MiB-L2 core, 32 runs per chunk train 1.3x faster than 64).
CHUNK = 32
BATCH_SIZE = 16
#: Keras defaults: Adam beta1/beta2, RMSProp rho, and the epsilon of both.
ADAM_BETAS, RMSPROP_RHO, EPSILON = (0.9, 0.999), 0.9, 1e-7


@dataclass(frozen=True)
class RunConfigs:
    """Hyperparameters of R runs, one entry per run (tensors have shape ``(R,)``).

    ``optimizer`` is one of :data:`OPTIMIZERS`, ``w_init`` one of :data:`W_INITS`; ``init_std``
    is the std of the RandomNormal / TruncatedNormal initializers (unused by the others).
    """

    activation: tuple[str, ...]
    learning_rate: torch.Tensor
    init_std: torch.Tensor
    l2reg: torch.Tensor
    dropout: torch.Tensor
    train_fraction: torch.Tensor
    optimizer: tuple[str, ...]
    w_init: tuple[str, ...]

    def __post_init__(self) -> None:
        for name, values, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("w_init", self.w_init, W_INITS),
        ):
            if len(values) != len(self.activation) or not set(values) <= set(allowed):
                raise ValueError(f"RunConfigs.{name}: one of {allowed} per run, got {values}")

    def __len__(self) -> int:
        return len(self.activation)

    def select(self, idx: torch.Tensor) -> RunConfigs:
        """The configs of the runs ``idx`` (in that order)."""
        pick = idx.tolist()
        return RunConfigs(
            tuple(self.activation[i] for i in pick),
            self.learning_rate[idx],
            self.init_std[idx],
            self.l2reg[idx],
            self.dropout[idx],
            self.train_fraction[idx],
            tuple(self.optimizer[i] for i in pick),
            tuple(self.w_init[i] for i in pick),
        )

    def as_columns(self) -> dict[str, torch.Tensor | tuple[str, ...]]:
        """The per-run values by hyperparameter name (as in ``REAL_HYPERPARAMETERS``)."""
        return {
            "activation": self.activation,
            "learning_rate": self.learning_rate,
            "init_std": self.init_std,
            "l2reg": self.l2reg,
            "dropout": self.dropout,
            "train_fraction": self.train_fraction,
            "optimizer": self.optimizer,
            "w_init": self.w_init,
        }


def _stratified_unit(n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` draws whose marginal is exactly Uniform(0, 1), one in each of n equal bins (in
    random order): a Latin-hypercube column. A small zoo then covers the whole range."""
    bins = torch.randperm(n, generator=gen).double()
    return (bins + torch.rand(n, generator=gen, dtype=torch.float64)) / n


def _balanced_choice(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` indices into ``k`` choices, as equal in number as possible, in random order."""
    offset = int(torch.randint(0, k, (1,), generator=gen))
    return ((torch.arange(n) + offset) % k)[torch.randperm(n, generator=gen)]


def sample_run_configs(n_runs: int, gen: torch.Generator) -> RunConfigs:
    """Random hyperparameters for ``n_runs`` runs, from the real zoo's distributions.

    Each hyperparameter independently of the others
    (:data:`scalegmn.data.standins.cnn_reference.REAL_HYPERPARAMETERS`, Unterthiner et al. 2020,
    Sec. 3): learning rate log-uniform in [5e-4, 5e-2], L2
    log-uniform in [1e-8, 1e-2], dropout uniform in [0, 0.7], init std log-uniform in
    [1e-3, 0.5], train fraction, activation, optimizer and weight initializer uniform over
    their choices (:data:`TRAIN_FRACTIONS`, relu/tanh, :data:`OPTIMIZERS`, :data:`W_INITS`).

    The draws are stratified: every continuous hyperparameter puts one run in each of
    ``n_runs`` equal-probability bins, every categorical one is balanced (half relu, half
    tanh), and the columns are shuffled independently. The marginals are exactly the real
    ones; a zoo of a few runs just cannot miss a part of a range.
    """

    def log_uniform(name: str) -> torch.Tensor:
        lo, hi = (REAL_HYPERPARAMETERS[name][k] for k in ("low", "high"))
        u = _stratified_unit(n_runs, gen)
        return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))

    def uniform(name: str) -> torch.Tensor:
        lo, hi = (REAL_HYPERPARAMETERS[name][k] for k in ("low", "high"))
        return lo + _stratified_unit(n_runs, gen) * (hi - lo)

    is_tanh = torch.randperm(n_runs, generator=gen) < n_runs // 2
    fractions = torch.tensor(TRAIN_FRACTIONS, dtype=torch.float64)
    return RunConfigs(
        activation=tuple("tanh" if t else "relu" for t in is_tanh.tolist()),
        learning_rate=log_uniform("learning_rate"),
        init_std=log_uniform("init_std"),
        l2reg=log_uniform("l2reg"),
        dropout=uniform("dropout"),
        train_fraction=fractions[_balanced_choice(n_runs, len(fractions), gen)],
        optimizer=tuple(
            OPTIMIZERS[i] for i in _balanced_choice(n_runs, len(OPTIMIZERS), gen).tolist()
        ),
        w_init=tuple(W_INITS[i] for i in _balanced_choice(n_runs, len(W_INITS), gen).tolist()),
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


def _keras_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras fan_in / fan_out of a PyTorch weight ``(out, in)`` or ``(out, in, kh, kw)``."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _truncated_normal(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Standard normal truncated to [-2, 2] (redrawn outside, like TF's truncated normal)."""
    z = torch.randn(shape, generator=gen)
    while (bad := z.abs() > 2).any():
        z[bad] = torch.randn(int(bad.sum()), generator=gen)
    return z


def _orthogonal(n: int, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Keras ``Orthogonal`` (gain 1) for ``n`` PyTorch weights of ``shape``: the kernel as a
    (fan_in, out) matrix has orthonormal columns (or rows, when fan_in < out)."""
    fan_in, out = math.prod(shape[1:]), shape[0]
    tall = (max(fan_in, out), min(fan_in, out))
    q, r = torch.linalg.qr(torch.randn((n, *tall), generator=gen))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    w = q.transpose(-1, -2) if fan_in >= out else q  # (n, out, fan_in)
    return w.reshape(n, *shape)


def _keras_init(
    name: str, n: int, shape: tuple[int, ...], std: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """``n`` PyTorch weights of ``shape`` from Keras initializer ``name``; ``std`` ``(n,)``."""
    fan_in, fan_out = _keras_fans(shape)
    glorot = math.sqrt(2.0 / (fan_in + fan_out))
    if name == "RandomNormal":
        return torch.randn((n, *shape), generator=gen) * std.view(-1, *[1] * len(shape))
    if name == "TruncatedNormal":
        return _truncated_normal((n, *shape), gen) * std.view(-1, *[1] * len(shape))
    if name == "Orthogonal":
        return _orthogonal(n, shape, gen)
    if name == "GlorotNormal":
        # VarianceScaling divides by the std of a [-2, 2]-truncated standard normal
        return _truncated_normal((n, *shape), gen) * (glorot / 0.8796256610342398)
    if name == "GlorotUniform":
        return (torch.rand((n, *shape), generator=gen) * 2 - 1) * (math.sqrt(3.0) * glorot)
    raise ValueError(f"unknown initializer {name!r}; use one of {W_INITS}")


def init_cnns(
    spec: NetworkSpec,
    init_std: torch.Tensor,
    gen: torch.Generator,
    w_init: tuple[str, ...] | None = None,
) -> Network:
    """Initial weights per run by its Keras initializer (:data:`W_INITS`), zero biases.

    RandomNormal and TruncatedNormal use the run's ``init_std``; GlorotNormal (truncated,
    std ``sqrt(2 / (fan_in + fan_out))``), GlorotUniform and Orthogonal ignore it. Without
    ``w_init`` every run is RandomNormal.
    """
    n = init_std.shape[0]
    w_init = w_init if w_init is not None else ("RandomNormal",) * n
    weights, biases = [], []
    for layer in range(spec.n_layers):
        shape = spec.weight_shape(layer)
        # every initializer draws for every run, so the random stream does not depend on
        # which runs share the batch; each run keeps its own initializer's draw
        w = torch.zeros(n, *shape)
        for name in W_INITS:
            sel = torch.tensor([kind == name for kind in w_init])
            w[sel] = _keras_init(name, n, shape, init_std.float(), gen)[sel]
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
    """:func:`scalegmn.weightspace.functional.cnn_forward` with dropout after every hidden conv.

    Elementwise (inverted) dropout like Keras ``Dropout``: each activation of each image is
    kept with its run's probability and scaled by 1 / keep. To keep it cheap, the runs of a
    batch threshold one shared uniform draw per (image, channel, position) at their own keep
    probability (each run's mask is exact Bernoulli), and the 1 / keep scaling is applied to
    the next layer's weights instead of the activations (the same function: layers are linear).

    Shapes: images ``(B, M, 1, H, W)``, keep (keep probability per run) ``(B,)``;
    returns logits ``(B, M, 10)``.
    """
    n_runs = keep.shape[0]
    p = keep.to(weights[0].dtype)

    def dropout(h: torch.Tensor, layer: int) -> torch.Tensor:
        m, _, hh, ww = h.shape  # (M, B*C, H, W), runs major
        c = spec.layout[layer + 1]
        u = torch.rand((m, 1, c, hh, ww), generator=gen, dtype=h.dtype)
        mask = u < p.view(1, -1, 1, 1, 1)
        return (h.view(m, n_runs, c, hh, ww) * mask).view(h.shape)

    inv = 1.0 / p
    scaled = (weights[0], *[w * inv.view(-1, *[1] * (w.dim() - 1)) for w in weights[1:]])
    return cnn_forward(spec, scaled, tuple(biases), images, after_conv=dropout)


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


def optimizer_step(
    params: list[torch.Tensor],
    grads: tuple[torch.Tensor, ...],
    m_state: list[torch.Tensor],
    v_state: list[torch.Tensor],
    step: int,
    lr: torch.Tensor,
    optimizer: tuple[str, ...],
) -> None:
    """One update of R runs in place, each by its own optimizer and learning rate ``(R,)``.

    Keras defaults: Adam (beta1 0.9, beta2 0.999, bias-corrected), RMSProp (rho 0.9, no
    momentum), plain SGD; epsilon 1e-7 outside the square root. Tensors are ``(R, ...)``;
    ``step`` counts from 1; ``m_state``/``v_state`` are the first/second moments.
    """
    kind = torch.tensor([OPTIMIZERS.index(o) for o in optimizer])
    is_adam, is_sgd = kind == OPTIMIZERS.index("adam"), kind == OPTIMIZERS.index("sgd")
    beta1, beta2 = ADAM_BETAS
    decay = torch.where(is_adam, beta2, RMSPROP_RHO)  # second-moment decay (unused by SGD)
    bc1 = torch.where(is_adam, 1.0 - beta1**step, 1.0)
    bc2 = torch.where(is_adam, 1.0 - beta2**step, 1.0)
    with torch.no_grad():
        for p, g, m_i, v_i in zip(params, grads, m_state, v_state, strict=True):
            shape = (-1, *[1] * (p.dim() - 1))
            d = decay.view(shape)
            m_i.mul_(beta1).add_(g, alpha=1.0 - beta1)
            v_i.mul_(d).add_((1.0 - d) * g * g)
            numer = torch.where(is_adam.view(shape), m_i / bc1.view(shape), g)
            adaptive = numer / ((v_i / bc2.view(shape)).sqrt() + EPSILON)
            p.sub_(lr.view(shape) * torch.where(is_sgd.view(shape), g, adaptive))


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
    net = init_cnns(spec, configs.init_std, gen, configs.w_init)
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
        optimizer_step(params, grads, m_state, v_state, step, lr, configs.optimizer)
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
        train_x: training pool ``(N, 1, 32, 32)`` in [-1, 1].
        train_y: labels of the training pool ``(N,)``.
        test_x: test images, shared by all runs.
        test_y: test labels, shared by all runs.
        train_steps: optimizer steps (batch :data:`BATCH_SIZE`) that stand for the zoo's
            86 epochs.
        gen: random generator (subsets, minibatches, dropout, init).
        n_train_eval: training images per run on which train accuracy/loss are measured.
        chunk: runs trained together (speed only).
        label: name used in progress logs.

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
