"""The embedding task: a contrastive objective for an invariant encoder, and its evaluation.

Encoder: an invariant model built for task ``embedding`` (ScaleGMN, ScaleGMN-B, the
permutation-only GMN, or the MLP on flattened weights as the baseline) whose readout gives
``(B, model.embed_dim)``; :func:`embed` L2-normalises it.

Positives: a network's positive is the network with Gaussian noise (std ``optim.positive_noise``
times each layer's RMS, per network) moved to a random point of its symmetry orbit (a random
permutation of every hidden layer and a valid scaling: signs for sine/tanh, positive factors
for ReLU, per network in a mixed zoo). Checkpoints of the same run and INRs of the same image
are not used as positives: the cache keeps one checkpoint per CNN run, and the table's INR views
hold one INR per image.

Loss: symmetric InfoNCE with temperature ``optim.temperature``, the batch's other networks and
their positives as negatives.

Evaluation (:func:`evaluate_split`), on one split:

- instance retrieval: each network's positive (drawn from a fixed seed, so every evaluation
  sees the same queries and the training RNG is untouched) queries the split; the relevant
  item is its own network: ``recall_at_{1,5,10}``, ``mrr``;
- class retrieval (INR zoos, integer labels): each network queries the others; the relevant
  items are those of its class: ``class_recall_at_1`` (nearest-neighbour accuracy), ``class_mrr``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from scalegmn.data.split_protocol import Split
from scalegmn.data.stream import in_order
from scalegmn.models.presets import OptimConfig
from scalegmn.train.metrics import retrieval_metrics
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network
from scalegmn.weightspace.symmetry import (
    permute_hidden,
    random_mixed_scales,
    random_permutations,
    random_symmetry,
    scale_hidden,
)

#: Seed of the retrieval queries of every evaluation (fixed: comparable across evaluations).
QUERY_SEED = 1234


@dataclass(frozen=True)
class Contrastive:
    """The contrastive objective's settings (from ``optim``)."""

    temperature: float = 0.1
    positive_noise: float = 0.05

    @classmethod
    def of(cls, optim: OptimConfig) -> Contrastive:
        """The settings an :class:`OptimConfig` holds."""
        return cls(temperature=optim.temperature, positive_noise=optim.positive_noise)


def layer_noise(net: Network, rel: float, generator: torch.Generator | None = None) -> Network:
    """Every weight and bias plus ``N(0, (rel * RMS)^2)``, the RMS of its layer's tensor per network."""
    if rel == 0:
        return net

    def noisy(t: torch.Tensor) -> torch.Tensor:
        rms = t.pow(2).flatten(1).mean(1).sqrt().reshape(-1, *([1] * (t.dim() - 1)))
        return t + rel * rms * torch.randn(t.shape, generator=generator, dtype=t.dtype)

    return net.replace(weights=tuple(noisy(w) for w in net.weights), biases=tuple(noisy(b) for b in net.biases))


def random_orbit_point(batch: WeightBatch, generator: torch.Generator | None = None) -> Network:
    """Each network of ``batch`` at a random point of its symmetry orbit (per-network scales for
    a mixed relu/tanh batch)."""
    net = batch.net
    if batch.sign_mask is None:
        return random_symmetry(net, generator)
    q = random_mixed_scales(net.spec, batch.sign_mask, generator, dtype=net.weights[0].dtype)
    return permute_hidden(scale_hidden(net, q), random_permutations(net.spec, generator, (batch.size,)))


def positive_views(batch: WeightBatch, noise: float, generator: torch.Generator | None = None) -> WeightBatch:
    """The positives of ``batch``: noise, then a random symmetry (drawn on the CPU from
    ``generator``, else torch's global RNG, which the resume file saves)."""
    device = batch.net.weights[0].device
    cpu = batch.to("cpu")
    net = random_orbit_point(replace(cpu, net=layer_noise(cpu.net, noise, generator)), generator)
    return replace(cpu, net=net.replace(meta={})).to(device)


def embed(model: torch.nn.Module, batch) -> torch.Tensor:
    """``(B, d)`` L2-normalised embeddings of a batch."""
    return F.normalize(model(batch), dim=-1)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE of ``(B, d)`` unit embeddings whose rows ``a[i]``, ``b[i]`` are positives."""
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def contrastive_loss(model: torch.nn.Module, batch: WeightBatch, objective: Contrastive) -> torch.Tensor:
    """The training loss of one batch: InfoNCE between the networks and their positives."""
    positives = positive_views(batch, objective.positive_noise)
    return info_nce(embed(model, batch), embed(model, positives), objective.temperature)


@torch.no_grad()
def split_embeddings(model: torch.nn.Module, split: Split, batch_size: int, device: torch.device | str, *,
                     noise: float | None = None, seed: int = QUERY_SEED) -> torch.Tensor:
    """``(N, d)`` embeddings of the split (float64, CPU), in row order; with ``noise``, of the
    networks' positives drawn from ``seed`` instead (the retrieval queries)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out = []
    for batch in in_order(split, batch_size):
        batch = batch.to(device)
        if noise is not None:
            batch = positive_views(batch, noise, generator)
        out.append(embed(model, batch).double().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.float64)


def has_classes(split: Split) -> bool:
    """Whether the split's labels are classes (INR zoos), not accuracies (CNN zoos)."""
    return split.y is not None and not split.y.is_floating_point()


def retrieval_report(gallery: torch.Tensor, queries: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    """Instance retrieval of ``queries[i]`` among ``gallery`` (relevant: row i) and, with class
    ``labels``, class retrieval of each gallery item among the others (see the module docstring)."""
    n = gallery.shape[0]
    out = retrieval_metrics(queries @ gallery.T, torch.eye(n, dtype=torch.bool))
    if labels is not None:
        same = labels.reshape(-1, 1) == labels.reshape(1, -1)
        cls = retrieval_metrics(gallery @ gallery.T, same, exclude=torch.eye(n, dtype=torch.bool), ks=(1,))
        out.update({f"class_{k}": v for k, v in cls.items()})
    return out


def evaluate_split(model: torch.nn.Module, split: Split, batch_size: int, device: torch.device,
                   objective: Contrastive) -> dict[str, float]:
    """InfoNCE loss and retrieval metrics of the split (see the module docstring)."""
    gallery = split_embeddings(model, split, batch_size, device)
    queries = split_embeddings(model, split, batch_size, device, noise=objective.positive_noise)
    loss = float(info_nce(gallery, queries, objective.temperature)) if split.size else float("nan")
    labels = split.y.cpu() if has_classes(split) else None
    return {"loss": loss, **retrieval_report(gallery, queries, labels)}


def as_numpy(z: torch.Tensor) -> np.ndarray:
    """Embeddings as a float32 array (what the embedding stores hold)."""
    return z.detach().to(torch.float32).cpu().numpy()
