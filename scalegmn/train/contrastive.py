"""The embedding task: a contrastive objective for an invariant encoder, and its evaluation.

Encoder: an invariant model built for task ``embedding`` (ScaleGMN, ScaleGMN-B, the
permutation-only GMN, or the MLP on flattened weights as the baseline) whose readout gives
``(B, model.embed_dim)``; :func:`embed` L2-normalises it.

Positives (``optim.positive``): with ``copy`` a network's positive is the network itself with
Gaussian noise (std ``optim.positive_noise`` times each layer's RMS, per network) moved to a
random point of its symmetry orbit (a random permutation of every hidden layer and a valid
scaling: signs for sine/tanh, positive factors for ReLU, per network in a mixed zoo). With
``sibling`` the same noise and symmetry are applied to one of its siblings instead
(:mod:`scalegmn.data.siblings`: another checkpoint of its training run, another INR of its
image), drawn per step from the train split; a network without siblings falls back to ``copy``.

Loss: symmetric InfoNCE with temperature ``optim.temperature``, the batch's other networks and
their positives as negatives.

Evaluation (:func:`evaluate_split`), on one split:

- instance retrieval: each network's positive (drawn from a fixed seed, so every evaluation
  sees the same queries and the training RNG is untouched) queries the split; the relevant
  item is its own network: ``recall_at_{1,5,10}``, ``mrr``;
- sibling retrieval (splits where some networks have siblings: Wild Park, the augmented CIFAR-10
  INRs): each network with a sibling queries the others; relevant are its siblings:
  ``sibling_recall_at_{1,5,10}``, ``sibling_mrr``;
- class retrieval (INR zoos, integer labels): each network queries the others; the relevant
  items are those of its class: ``class_recall_at_1`` (nearest-neighbour accuracy), ``class_mrr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from scalegmn.data.siblings import sibling_groups
from scalegmn.data.split_protocol import Split
from scalegmn.data.stream import in_order
from scalegmn.models.presets import OptimConfig
from scalegmn.train.metrics import retrieval_metrics
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
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


class Siblings:
    """The siblings of each network of a split, and a draw of one of them per network.

    A network's siblings are the other members of its group (:func:`sibling_groups` of the
    split's sources); one without siblings is its own draw.
    """

    def __init__(self, split: Split) -> None:
        self.split = split
        groups = torch.as_tensor(sibling_groups(split.sources))
        self.order = torch.argsort(groups, stable=True)  # the split's rows, group by group
        counts = torch.bincount(groups)
        starts = torch.cumsum(counts, 0) - counts
        self.start, self.count = starts[groups], counts[groups]  # per row: its group's slice of order
        self.position = torch.empty_like(groups)
        self.position[self.order] = torch.arange(len(groups)) - starts[groups[self.order]]

    @property
    def any(self) -> bool:
        """Whether any network of the split has a sibling."""
        return bool((self.count > 1).any())

    def draw(self, index: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One sibling (a split row) of each row in ``index``, uniformly among the others of its group."""
        index = index.cpu()
        count, position = self.count[index], self.position[index]
        k = (torch.rand(index.shape, generator=generator, dtype=torch.float64) * (count - 1).clamp_min(1)).long()
        k = k + (k >= position).long()  # skip the network itself
        return torch.where(count > 1, self.order[self.start[index] + k.clamp_max(count - 1)], index)


@dataclass(frozen=True)
class Contrastive:
    """The contrastive objective's settings (from ``optim``); ``siblings`` of the train split
    when the positives are siblings."""

    temperature: float = 0.1
    positive_noise: float = 0.05
    siblings: Siblings | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, optim: OptimConfig, train: Split | None = None) -> Contrastive:
        """The settings an :class:`OptimConfig` holds, with the siblings of ``train`` if its
        positives are siblings."""
        siblings = Siblings(train) if optim.positive == "sibling" and train is not None else None
        return cls(temperature=optim.temperature, positive_noise=optim.positive_noise, siblings=siblings)


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


def positive_views(batch: WeightBatch | MixedBatch, noise: float,
                   generator: torch.Generator | None = None) -> WeightBatch | MixedBatch:
    """The positives of ``batch``: noise, then a random symmetry (drawn on the CPU from
    ``generator``, else torch's global RNG, which the resume file saves)."""
    if isinstance(batch, MixedBatch):
        device = batch.groups[0].weights[0].device
        cpu = batch.to("cpu")
        groups = tuple(random_symmetry(layer_noise(g, noise, generator), generator).replace(meta={})
                       for g in cpu.groups)
        return replace(cpu, groups=groups).to(device)
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


def _aligned(wanted: torch.Tensor, got: torch.Tensor) -> torch.Tensor:
    """``perm`` with ``got[perm] == wanted`` (both hold the same split rows, repeats included):
    a MixedBatch orders its rows by architecture, not as asked."""
    perm = torch.empty_like(got)
    perm[torch.argsort(wanted, stable=True)] = torch.argsort(got, stable=True)
    return perm


def positive_embeddings(model: torch.nn.Module, batch: WeightBatch | MixedBatch,
                        objective: Contrastive) -> torch.Tensor:
    """``(B, d)`` embeddings of the batch's positives, row ``i`` that of network ``i``'s."""
    siblings = objective.siblings
    if siblings is None or batch.index is None:
        return embed(model, positive_views(batch, objective.positive_noise))
    wanted = siblings.draw(batch.index)
    base = siblings.split.get(wanted).to(batch.index.device)
    z = embed(model, positive_views(base, objective.positive_noise))
    return z if base.index is None else z[_aligned(wanted.to(base.index.device), base.index)]


def contrastive_loss(model: torch.nn.Module, batch: WeightBatch | MixedBatch, objective: Contrastive) -> torch.Tensor:
    """The training loss of one batch: InfoNCE between the networks and their positives."""
    return info_nce(embed(model, batch), positive_embeddings(model, batch, objective), objective.temperature)


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
        z = embed(model, batch).double().cpu()
        # a MixedBatch holds its rows by architecture; index says which rows they are
        out.append(z if batch.index is None else z[torch.argsort(batch.index.cpu())])
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.float64)


def has_classes(split: Split) -> bool:
    """Whether the split's labels are classes (INR zoos), not accuracies (CNN zoos)."""
    return split.y is not None and not split.y.is_floating_point()


def retrieval_report(gallery: torch.Tensor, queries: torch.Tensor, labels: torch.Tensor | None,
                     groups: torch.Tensor | None = None) -> dict[str, float]:
    """Instance retrieval of ``queries[i]`` among ``gallery`` (relevant: row i); with sibling
    ``groups`` (some shared), sibling retrieval; with class ``labels``, class retrieval of each
    gallery item among the others (see the module docstring)."""
    n = gallery.shape[0]
    out = retrieval_metrics(queries @ gallery.T, torch.eye(n, dtype=torch.bool))
    if groups is not None and len(torch.unique(groups)) < n:
        same = groups.reshape(-1, 1) == groups.reshape(1, -1)
        sib = retrieval_metrics(gallery @ gallery.T, same, exclude=torch.eye(n, dtype=torch.bool))
        out.update({f"sibling_{k}": v for k, v in sib.items()})
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
    groups = torch.as_tensor(sibling_groups(split.sources))
    return {"loss": loss, **retrieval_report(gallery, queries, labels, groups)}


def as_numpy(z: torch.Tensor) -> np.ndarray:
    """Embeddings as a float32 array (what the embedding stores hold)."""
    return z.detach().to(torch.float32).cpu().numpy()
