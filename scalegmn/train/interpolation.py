"""Interpolation in weight space after alignment by the encoder's neuron matching (INR zoos).

What is built: the weight-space midpoint of two networks of the same image after aligning one to
the other by the encoder's matching, against the naive midpoint. Decoding networks from points
of the embedding space is not built.

The pairs are each test INR ``a`` and its positive ``b`` (the same network with noise, at a random
point of its symmetry orbit, drawn from a fixed seed): the same image, as the INRs of one image
in the CIFAR-10 aug copies are, but with a known answer. :func:`align` matches the hidden
neurons of ``b`` to those of ``a`` layer by layer (the Hungarian method on the cosine similarity
of the encoder's final neuron states, made invariant to the scaling group: ``|h|`` for the sign
group, ``h`` for positive scalings, whose cosine ignores them), then undoes the scaling neuron
by neuron from the weights (sign of the dot product of the incoming weights and bias; for
positive scalings, the ratio of their norms). The reported numbers are the mean squared error of
the midpoint's rendering against ``a``'s rendering:

- ``interp_naive_mse``: ``(a + b) / 2``;
- ``interp_aligned_mse``: ``(a + align(b, a)) / 2``;
- ``interp_oracle_mse``: ``a`` and its noisy copy before the symmetry (the best an alignment can do).
"""

from __future__ import annotations

import torch

from scalegmn.data.split_protocol import Split
from scalegmn.train.contrastive import QUERY_SEED, layer_noise, random_orbit_point
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.functional import render
from scalegmn.weightspace.network import Network, scale_kind
from scalegmn.weightspace.symmetry import permute_hidden, scale_hidden


def _invariant(h: torch.Tensor, kind: str) -> torch.Tensor:
    return h.abs() if kind == "sign" else h


def neuron_matching(states_a: list[torch.Tensor], states_b: list[torch.Tensor], kind: str) -> list[torch.Tensor]:
    """Per hidden layer ``(B, n_l)``: ``perm[i]`` = the neuron of ``b`` matched to neuron i of ``a``
    (maximum total cosine similarity of the neurons' states, per network)."""
    from scipy.optimize import linear_sum_assignment

    perms = []
    for ha, hb in zip(states_a[1:-1], states_b[1:-1], strict=True):  # hidden layers only
        fa = torch.nn.functional.normalize(_invariant(ha, kind).double(), dim=-1)
        fb = torch.nn.functional.normalize(_invariant(hb, kind).double(), dim=-1)
        sim = (fa @ fb.transpose(1, 2)).cpu().numpy()
        perms.append(torch.stack([torch.as_tensor(linear_sum_assignment(-s)[1]) for s in sim]))
    return perms


def _incoming(net: Network, layer: int) -> torch.Tensor:
    """``(B, n, fan_in + 1)``: each neuron's incoming weights and its bias."""
    return torch.cat([net.weights[layer].flatten(2), net.biases[layer].unsqueeze(-1)], dim=-1)


def undo_scaling(a: Network, b: Network) -> Network:
    """``b`` with each hidden neuron's scaling (sign or positive factor) matched to ``a``'s, from
    the incoming weights and bias, first hidden layer first (each layer's fix changes the next
    layer's incoming weights)."""
    kind = scale_kind(a.spec.hidden_activation)
    n_hidden = a.spec.n_layers - 1
    for layer in range(n_hidden):
        ra, rb = _incoming(a, layer), _incoming(b, layer)
        if kind == "sign":
            q = torch.where((ra * rb).sum(-1) < 0, -1.0, 1.0).to(rb.dtype)
        else:
            q = ra.norm(dim=-1) / rb.norm(dim=-1).clamp_min(1e-12)
        ones = [torch.ones_like(t) for t in a.biases[:n_hidden]]
        ones[layer] = q
        b = scale_hidden(b, ones)
    return b


def align(model: torch.nn.Module, a: Network, b: Network, sign_mask: torch.Tensor | None = None) -> Network:
    """``b``'s networks aligned to ``a``'s: the encoder's neuron matching (its states computed in
    the model's precision), then the scaling; in ``b``'s precision."""
    p = next(model.parameters())
    with torch.no_grad():
        states_a = model.node_states(WeightBatch(a.to(p.dtype), sign_mask=sign_mask).to(p.device))
        states_b = model.node_states(WeightBatch(b.to(p.dtype), sign_mask=sign_mask).to(p.device))
    perms = neuron_matching(states_a, states_b, scale_kind(a.spec.hidden_activation))
    return undo_scaling(a, permute_hidden(b, perms))


def _midpoint(a: Network, b: Network) -> Network:
    return a.replace(weights=tuple((x + y) / 2 for x, y in zip(a.weights, b.weights, strict=True)),
                     biases=tuple((x + y) / 2 for x, y in zip(a.biases, b.biases, strict=True)))


def interpolation_metrics(model: torch.nn.Module, split: Split, noise: float, n: int = 64) -> dict[str, float]:
    """The midpoint errors of the module docstring over the first ``n`` networks of ``split``
    (CPU, float64); empty when the networks are not INRs (or mix architectures) or the encoder
    has no neuron states."""
    if (getattr(split, "is_mixed", False) or split.spec.layout[0] != 2 or not hasattr(model, "node_states")
            or split.size == 0):
        return {}
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(QUERY_SEED)
    batch = split.get(torch.arange(min(n, split.size))).to("cpu")
    a = batch.net.to(torch.float64)
    noisy = layer_noise(a, noise, g)
    b = random_orbit_point(WeightBatch(noisy, sign_mask=batch.sign_mask), g)
    aligned = align(model, a, b, batch.sign_mask)
    model.train(was_training)
    shape = (28, 28) if split.spec.layout[-1] == 1 else (32, 32)
    target = render(a, shape)

    def mse(net: Network) -> float:
        return float((render(net, shape) - target).pow(2).mean())

    return {"interp_naive_mse": mse(_midpoint(a, b)), "interp_aligned_mse": mse(_midpoint(a, aligned)),
            "interp_oracle_mse": mse(_midpoint(a, noisy))}
