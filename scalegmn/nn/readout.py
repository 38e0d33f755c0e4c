"""Readouts (docs/model.md §2.7, §2.8, §2.9).

- ``LastLayerReadout``: ``y = MLP(flatten(h_outputs))``. Output neurons have ``q = 1`` and their
  own types, so this is invariant by construction.
- ``BidirLastLayerReadout``: ``y = MLP([Lin(flatten h_out) ‖ Lin(flatten h_in)])``.
- ``FullGraphReadout``: ``y = MLP_g([Σ_{i hidden} ScaleInv(h_i) ‖ flatten(h_in, h_out)])``:
  invariant per hidden neuron, then summed (permutation invariant).
- ``DeepSetReadout`` (GMN): ``y = MLP_g(Σ_i MLP_l(h_i))`` over all nodes.
- ``EditingHead`` (equivariant): ``ΔW_l = α_l E_l``, ``Δb_l = β_l H_l`` from the last layer's
  one-channel edge/node states; they transform exactly like ``W_l``/``b_l``.

Shapes (every readout's ``forward(h, g)``): ``h (N, d)`` node states of the flat graph ``g``
of G graphs -> ``(G, d_out)``; the editing head's ``forward(h, e, g)``: ``h (N, 1)``,
``e (E, d_e)`` -> per-layer ``(ΔW_l (G, *W_l.shape), Δb_l (G, *b_l.shape))``.
"""

from __future__ import annotations

import torch
from torch import nn

from scalegmn.nn.graph_batch import HIDDEN, FlatGraph
from scalegmn.nn.invariant import ScaleInv, Tau
from scalegmn.nn.mlp import MLP
from scalegmn.weightspace.graph import from_graph_features


def _io_states(h: torch.Tensor, nodes: torch.Tensor, what: str, expected: int) -> torch.Tensor:
    """``(G, n * d)``: the states of each graph's input or output neurons, flattened."""
    if nodes.shape[1] != expected:
        raise ValueError(f"the model was built for networks with {expected} {what}s, "
                         f"these have {nodes.shape[1]}")
    return h[nodes].reshape(nodes.shape[0], -1)


class LastLayerReadout(nn.Module):
    """``y = MLP(flatten(h_outputs))``; invariant: output neurons have ``q = 1`` and own types.

    Shapes:
        ``h (N, d)`` of ``G`` graphs with ``n_out`` output neurons each -> ``(G, d_out)``.
    """

    def __init__(self, n_out: int, d: int, d_out: int, **mlp_kw) -> None:
        super().__init__()
        self.mlp = MLP(n_out * d, d_out, **mlp_kw)
        self.n_out = n_out

    def forward(self, h: torch.Tensor, g: FlatGraph) -> torch.Tensor:
        """Read each graph's output-neuron states; raises ``ValueError`` when ``n_out`` differs."""
        return self.mlp(_io_states(h, g.out_nodes, "output", self.n_out))


class BidirLastLayerReadout(nn.Module):
    """``y = MLP([Lin(flatten h_out) ‖ Lin(flatten h_in)])`` for bidirectional models; invariant
    like :class:`LastLayerReadout` (input neurons are not scaled either).

    Shapes:
        ``h (N, d)`` of ``G`` graphs, ``n_in`` inputs and ``n_out`` outputs each -> ``(G, d_out)``.
    """

    def __init__(self, n_in: int, n_out: int, d: int, d_out: int, **mlp_kw) -> None:
        super().__init__()
        self.lin_last = nn.Linear(n_out * d, d)
        self.lin_first = nn.Linear(n_in * d, d)
        self.mlp = MLP(2 * d, d_out, **mlp_kw)
        self.n_in, self.n_out = n_in, n_out

    def forward(self, h: torch.Tensor, g: FlatGraph) -> torch.Tensor:
        """Read each graph's output and input neurons; raises ``ValueError`` on a count mismatch."""
        last = self.lin_last(_io_states(h, g.out_nodes, "output", self.n_out))
        first = self.lin_first(_io_states(h, g.in_nodes, "input", self.n_in))
        return self.mlp(torch.cat([last, first], dim=-1))


class FullGraphReadout(nn.Module):
    """``y = MLP_g([Σ_{i hidden} ScaleInv(h_i) ‖ flatten(h_in, h_out)])``: scale/sign invariant per
    hidden neuron, permutation invariant through the sum.

    Shapes:
        ``h (N, d)`` of ``G`` graphs, ``n_in`` inputs and ``n_out`` outputs each -> ``(G, d_out)``.
    """

    def __init__(self, n_in: int, n_out: int, d: int, d_out: int, tau: Tau, **mlp_kw) -> None:
        super().__init__()
        self.inv = ScaleInv(d, 0, d, tau, **mlp_kw)
        self.mlp = MLP(d + d * (n_in + n_out), d_out, **mlp_kw)
        self.d, self.n_in, self.n_out = d, n_in, n_out

    def forward(self, h: torch.Tensor, g: FlatGraph) -> torch.Tensor:
        """Pool the invariant hidden states per graph; append the flattened input/output states."""
        groups = g.groups("nodes")
        hid, odd, graph = (groups.take(t, HIDDEN) for t in (h, g.node_odd(), g.node_graph))
        pooled = h.new_zeros(g.num_graphs, self.d).index_add(0, graph, self.inv(hid, None, odd))
        io = torch.cat([_io_states(h, g.in_nodes, "input", self.n_in),
                        _io_states(h, g.out_nodes, "output", self.n_out)], dim=-1)
        return self.mlp(torch.cat([pooled, io], dim=-1))


class DeepSetReadout(nn.Module):
    """GMN readout ``y = MLP_g(Σ_i MLP_l(h_i))`` over all nodes (permutation invariant only).

    Shapes:
        ``h (N, d)`` of ``G`` graphs -> ``(G, d_out)``.
    """

    def __init__(self, d: int, d_out: int, **mlp_kw) -> None:
        super().__init__()
        self.local = MLP(d, d, **mlp_kw)
        self.mlp = MLP(d, d_out, **mlp_kw)
        self.d = d

    def forward(self, h: torch.Tensor, g: FlatGraph) -> torch.Tensor:
        """Sum ``MLP_l(h_i)`` per graph, then apply ``MLP_g``."""
        pooled = h.new_zeros(g.num_graphs, self.d).index_add(0, g.node_graph, self.local(h))
        return self.mlp(pooled)


class EditingHead(nn.Module):
    """Learned per-layer scales (init ``out_scale``) on the last layer's node/edge outputs."""

    def __init__(self, n_layers: int, out_scale: float) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((n_layers,), float(out_scale)))
        self.beta = nn.Parameter(torch.full((n_layers,), float(out_scale)))

    def forward(self, h: torch.Tensor, e: torch.Tensor, g: FlatGraph):
        """``ΔW_l = α_l E_l``, ``Δb_l = β_l H_l`` from the states ``h (N, 1)``, ``e (E, 1)``.

        Returns:
            ``(ΔW, Δb)``: per layer ``(G, *W_l.shape)`` and ``(G, *b_l.shape)``, transforming
            like the weights.
        """
        node = g.per_graph_nodes(h[:, 0])
        edge = g.per_graph_edges(e)
        weights, biases = from_graph_features(g.spec, node, edge)
        return (
            tuple(self.alpha[i] * w for i, w in enumerate(weights)),
            tuple(self.beta[i] * b for i, b in enumerate(biases)),
        )
