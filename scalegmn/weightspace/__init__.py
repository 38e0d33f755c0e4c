"""Weight space: what every stage means by "a network", independent of files and models.

The representation the whole pipeline shares (formats read into it, the cache stores it, the
models consume it) and the maths on it:

- :mod:`~scalegmn.weightspace.network`: :class:`Network` (weights and biases, optionally
  batched) and its architecture :class:`NetworkSpec`;
- :mod:`~scalegmn.weightspace.batch`: :class:`WeightBatch`, a batch of networks with their
  labels or targets, as a model receives it;
- :mod:`~scalegmn.weightspace.graph`: networks as graphs (one node per neuron, one edge per
  weight) and their node and edge features;
- :mod:`~scalegmn.weightspace.symmetry`: hidden-neuron permutations and scalings, the group
  actions ScaleGMN respects;
- :mod:`~scalegmn.weightspace.functional`: forward passes (evaluate an MLP/SIREN/CNN, render an
  INR);
- :mod:`~scalegmn.weightspace.testing`: helpers for property tests of symmetries and models.

The submodules import torch; this ``__init__`` imports none of them.
"""

__all__ = ["batch", "functional", "graph", "network", "symmetry", "testing"]
