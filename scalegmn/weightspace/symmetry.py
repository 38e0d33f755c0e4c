"""Symmetries of feed-forward networks: hidden-neuron permutations and scalings.

Pure functions: nothing is modified in place; every function returns new tensors.

Notation: a network with layout ``(n_0, ..., n_L)`` computes ``h_l = σ_l(W_l h_{l-1} + b_l)``
(PyTorch order, ``W_l`` is ``(n_l, n_{l-1})``; a conv layer's ``W_l`` is
``(n_l, n_{l-1}, kh, kw)`` and "row i" means output channel i). Hidden layers are
``l = 1 .. L-1``; inputs and outputs carry no symmetry.

Permutations (valid for every elementwise activation). For ``π_l`` a permutation of the
``n_l`` neurons of hidden layer l (new neuron i is old neuron ``π_l(i)``)::

    W_l' = P_l W_l,   b_l' = P_l b_l,   W_{l+1}' = W_{l+1} P_l^T

Scalings. For a diagonal ``Q_l = diag(q_l)``::

    W_l' = Q_l W_l,   b_l' = Q_l b_l,   W_{l+1}' = W_{l+1} Q_l^{-1}

computes the same function whenever ``σ_l(q z) = q σ_l(z)`` for every entry, i.e.

- ``q > 0`` for ReLU (positive homogeneity) and identity;
- ``q ∈ {-1, +1}`` for odd activations: tanh and sine (``sin(ω0·(-z)) = -sin(ω0·z)``);
- ``q = 1`` (permutations only) for GELU and sigmoid.

Residual connections (CNN Wild Park): ``(j, i, m)`` adds layer j's activated output to layer
i's pre-activation on the first m channels, so both layers' permutations and scales must agree
there and keep ``[:m]`` in place (:func:`random_group_element`).

Global average pooling between a conv and a linear layer is linear and commutes with both.

All functions accept optional leading batch dimensions shared by every tensor: a permutation or
scale vector is then ``(*batch, n_l)`` (one group element per network) or ``(n_l,)`` (the same
for all).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scalegmn.weightspace.network import SCALE_KINDS, Network, NetworkSpec, scale_kind


def _hidden_sizes(spec: NetworkSpec) -> list[int]:
    return list(spec.layout[1:-1])


def _check_group_elements(spec: NetworkSpec, elems: Sequence[torch.Tensor], what: str) -> None:
    sizes = _hidden_sizes(spec)
    if len(elems) != len(sizes):
        raise ValueError(
            f"{what}: got {len(elems)} tensors for {len(sizes)} hidden layers of layout "
            f"{spec.layout}; give one per hidden layer"
        )
    for i, (e, n) in enumerate(zip(elems, sizes, strict=True)):
        if e.shape[-1] != n:
            raise ValueError(
                f"{what}[{i}] has last dimension {e.shape[-1]}, expected {n} (hidden layer {i + 1})"
            )


def _gather(t: torch.Tensor, perm: torch.Tensor, n_core: int, dim: int) -> torch.Tensor:
    """``t`` re-indexed along core dimension ``dim`` by a (batched) permutation.

    ``t``: ``(*batch, *core)`` with ``len(core) == n_core``; ``perm``: ``(*batch, n)`` or ``(n,)``.
    """
    perm = perm.to(t.device)
    n_batch = t.dim() - n_core
    axis = n_batch + dim
    if perm.dim() == 1:
        return t.index_select(axis, perm)
    index = perm.reshape(*perm.shape, *([1] * (n_core - 1))).movedim(n_batch, axis)
    return torch.gather(t, axis, index.expand(*t.shape[:axis], perm.shape[-1], *t.shape[axis + 1 :]))


def _apply(
    spec: NetworkSpec,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    elems: Sequence[torch.Tensor],
    op: str,
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    weights, biases = list(weights), list(biases)
    for h, e in enumerate(elems):
        into, out_of = h, h + 1  # the layer producing hidden layer h+1, the layer consuming it
        w_core = len(spec.weight_shape(into))
        w2_core = len(spec.weight_shape(out_of))
        if op == "permute":
            weights[into] = _gather(weights[into], e, w_core, 0)
            biases[into] = _gather(biases[into], e, 1, 0)
            weights[out_of] = _gather(weights[out_of], e, w2_core, 1)
        else:
            e = e.to(dtype=weights[into].dtype, device=weights[into].device)
            row = e.reshape(*e.shape, *([1] * (w_core - 1)))  # (*b, n, 1[, 1, 1])
            col = e.reshape(*e.shape[:-1], 1, e.shape[-1], *([1] * (w2_core - 2)))
            weights[into] = weights[into] * row
            biases[into] = biases[into] * e
            weights[out_of] = weights[out_of] / col
    return tuple(weights), tuple(biases)


def permute_params(
    spec: NetworkSpec,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    perms: Sequence[torch.Tensor],
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Permute the hidden neurons: ``W_l' = P_l W_l``, ``b_l' = P_l b_l``,
    ``W_{l+1}' = W_{l+1} P_l^T`` (new neuron i of hidden layer l is old neuron ``perms[l-1][i]``).

    Valid for every activation. ``perms[l-1]``: long ``(n_l,)`` or ``(*batch, n_l)``.
    """
    _check_group_elements(spec, perms, "perms")
    return _apply(spec, weights, biases, [p.long() for p in perms], "permute")


def scale_params(
    spec: NetworkSpec,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    q: Sequence[torch.Tensor],
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Scale the hidden neurons: ``W_l' = diag(q_l) W_l``, ``b_l' = q_l ⊙ b_l``,
    ``W_{l+1}' = W_{l+1} diag(q_l)^{-1}``.

    Preserves the function for ``q > 0`` with ReLU/identity and ``q ∈ {±1}`` with tanh/sine.
    ``q[l-1]``: ``(n_l,)`` or ``(*batch, n_l)``; no entry may be 0.
    """
    _check_group_elements(spec, q, "q")
    if any(bool((x == 0).any()) for x in q):
        raise ValueError("q: scale factors must be non-zero")
    return _apply(spec, weights, biases, list(q), "scale")


def permute_hidden(net: Network, perms: Sequence[torch.Tensor]) -> Network:
    """:func:`permute_params` on a :class:`Network` (batch); metadata is kept."""
    w, b = permute_params(net.spec, net.weights, net.biases, perms)
    return net.replace(weights=w, biases=b)


def scale_hidden(net: Network, q: Sequence[torch.Tensor]) -> Network:
    """:func:`scale_params` on a :class:`Network` (batch); metadata is kept."""
    w, b = scale_params(net.spec, net.weights, net.biases, q)
    return net.replace(weights=w, biases=b)


def random_permutations(
    spec: NetworkSpec,
    generator: torch.Generator | None = None,
    batch_shape: Sequence[int] = (),
) -> list[torch.Tensor]:
    """One uniformly random permutation per hidden layer (and per network): ``(*batch, n_l)``."""
    return [
        torch.rand((*batch_shape, n), generator=generator).argsort(dim=-1)
        for n in _hidden_sizes(spec)
    ]


def random_scales(
    spec: NetworkSpec,
    generator: torch.Generator | None = None,
    kind: str = "sign",
    batch_shape: Sequence[int] = (),
    *,
    low: float = 0.25,
    high: float = 4.0,
    dtype: torch.dtype = torch.float64,
) -> list[torch.Tensor]:
    """Random scale vectors per hidden layer: ``(*batch, n_l)``.

    ``kind="sign"``: each entry ±1 with probability 1/2. ``kind="positive"``: log-uniform in
    ``[low, high]``. ``kind="none"``: all ones (permutation-only activations).
    """
    if kind not in SCALE_KINDS:
        raise ValueError(f"kind {kind!r}: use one of {SCALE_KINDS}")
    out = []
    for n in _hidden_sizes(spec):
        u = torch.rand((*batch_shape, n), generator=generator, dtype=dtype)
        if kind == "sign":
            out.append(torch.where(u < 0.5, -1.0, 1.0).to(dtype))
        elif kind == "none":
            out.append(torch.ones_like(u))
        else:
            lo, hi = torch.log(torch.tensor(low, dtype=dtype)), torch.log(torch.tensor(high, dtype=dtype))
            out.append(torch.exp(lo + (hi - lo) * u))
    return out


def random_mixed_scales(
    spec: NetworkSpec,
    odd_mask: torch.Tensor,
    generator: torch.Generator | None = None,
    **kwargs,
) -> list[torch.Tensor]:
    """Per-network valid scales for a batch that mixes odd and ReLU networks.

    ``odd_mask``: ``(B,)`` bool, True where the sign group acts (tanh/sine), False where
    positive scaling acts (ReLU). Returns ``(B, n_l)`` per hidden layer.
    """
    batch = tuple(odd_mask.shape)
    sign = random_scales(spec, generator, "sign", batch, **kwargs)
    pos = random_scales(spec, generator, "positive", batch, **kwargs)
    return [torch.where(odd_mask.unsqueeze(-1), s, p) for s, p in zip(sign, pos, strict=True)]


def _scale_vector(kind: str, shape: tuple[int, ...], generator: torch.Generator | None,
                  dtype: torch.dtype, low: float, high: float) -> torch.Tensor:
    """One random scale vector of ``kind`` ("sign", "positive", "none" or "fixed")."""
    u = torch.rand(shape, generator=generator, dtype=dtype)
    if kind == "sign":
        return torch.where(u < 0.5, -1.0, 1.0).to(dtype)
    if kind == "positive":
        lo, hi = torch.log(torch.tensor(low, dtype=dtype)), torch.log(torch.tensor(high, dtype=dtype))
        return torch.exp(lo + (hi - lo) * u)
    return torch.ones_like(u)


def _components(nodes: Sequence[int], ties: Sequence[tuple[int, int, int]]) -> list[list[int]]:
    """Connected components of ``nodes`` under the ``(a, b, m)`` ties (union-find), sorted."""
    parent = {n: n for n in nodes}

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b, _ in ties:
        parent[root(a)] = root(b)
    comps: dict[int, list[int]] = {}
    for n in nodes:
        comps.setdefault(root(n), []).append(n)
    return sorted(comps.values())


def tied_kind(kinds: Sequence[str]) -> str:
    """The scaling group channels tied by residual connections share: the intersection of
    their layers' groups (sign ∩ positive = {+1}: "none"; anything ∩ "none" = "none";
    "fixed", the output neurons, fixes the permutation too)."""
    distinct = set(kinds)
    if "fixed" in distinct:
        return "fixed"
    return distinct.pop() if len(distinct) == 1 else "none"


def tied_blocks(spec: NetworkSpec) -> list[tuple[int, int, tuple[int, ...], str]]:
    """``(start, stop, node layers, kind)``: channel blocks that share one permutation and
    scale, in block order per node layer (hidden layers 1..L-1 and the output layer L, whose
    kind is "fixed"). See :func:`random_group_element`."""
    n_layers = spec.n_layers
    sizes = spec.layout
    kinds = {node: scale_kind(spec.activations[node - 1]) for node in range(1, n_layers)}
    kinds[n_layers] = "fixed"
    ties = [(j + 1, i + 1, m) for j, i, m in spec.residual_pairs()]  # node layers
    out = []
    for comp in _components(list(kinds), ties):
        comp_ties = [t for t in ties if t[0] in comp]
        cuts = sorted({0, *(sizes[n] for n in comp), *(m for _, _, m in comp_ties)})
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            members = [n for n in comp if sizes[n] >= b]
            for group in _components(members, [t for t in comp_ties if t[2] >= b]):
                out.append((a, b, tuple(group), tied_kind([kinds[n] for n in group])))
    return out


def channel_kinds(spec: NetworkSpec) -> list[list[str]]:
    """The scaling group of every hidden channel, ``[layer 1 kinds, ..., layer L-1 kinds]``:
    its activation's (:func:`scale_kind`), intersected over the channels residual
    connections tie it to (:func:`tied_kind`; "fixed" where tied to an output)."""
    kinds = {n: [""] * spec.layout[n] for n in range(1, spec.n_layers)}
    for a, b, group, kind in tied_blocks(spec):
        for n in group:
            if n in kinds:
                kinds[n][a:b] = [kind] * (b - a)
    return [kinds[n] for n in range(1, spec.n_layers)]


def random_group_element(
    spec: NetworkSpec,
    generator: torch.Generator | None = None,
    batch_shape: Sequence[int] = (),
    *,
    permute: bool = True,
    low: float = 0.25,
    high: float = 4.0,
    dtype: torch.dtype = torch.float64,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A random valid ``(perms, scales)`` for any architecture: per hidden layer ``(*batch, n_l)``.

    Each hidden layer's scaling group follows its activation (:func:`scale_kind`). A residual
    connection ``(j, i, m)`` adds layer j's activated output to layer i's pre-activation on
    the first m channels, so the two layers' permutations and scales must agree on those
    channels and map ``[:m]`` onto itself. Layers joined by connections form components; in
    each, the channels are cut into blocks at every layer size and tie size, and every block
    gets one permutation and scale per set of layers tied on it (a tie of size m covers the
    blocks below m), of the intersection of their groups (:func:`tied_kind`). A tie into the
    output layer fixes the tied channels. ``apply_group_element`` applies the result.
    """
    batch = tuple(batch_shape)
    pieces: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for a, b, group, kind in tied_blocks(spec):
        if permute and kind != "fixed":
            perm = torch.rand((*batch, b - a), generator=generator).argsort(dim=-1) + a
        else:
            perm = torch.arange(a, b).expand(*batch, b - a)
        scale = _scale_vector(kind, (*batch, b - a), generator, dtype, low, high)
        for n in group:
            pieces.setdefault(n, []).append((perm, scale))
    n_layers = spec.n_layers
    perms = [torch.cat([p for p, _ in pieces[n]], dim=-1) for n in range(1, n_layers)]
    scales = [torch.cat([s for _, s in pieces[n]], dim=-1) for n in range(1, n_layers)]
    return perms, scales


def apply_group_element(net: Network, perms: Sequence[torch.Tensor],
                        scales: Sequence[torch.Tensor]) -> Network:
    """Scale, then permute the hidden neurons: ``W_l' = P_l Q_l W_l Q_{l-1}^{-1} P_{l-1}^T``."""
    return permute_hidden(scale_hidden(net, scales), perms)


def random_symmetry(
    net: Network, generator: torch.Generator | None = None, *, permute: bool = True
) -> Network:
    """Apply a random valid group element, one per network: a permutation and the scaling group
    each hidden layer's activation allows (sign for tanh/sine, positive for ReLU/leaky
    ReLU/identity, none for GELU/sigmoid), tied across residual connections
    (:func:`random_group_element`). Uniform architectures draw exactly as before (one
    stream: the stand-in zoos built with it stay the same).
    """
    batch = tuple(net.batch_shape)
    dtype = net.weights[0].dtype if net.weights[0].is_floating_point() else torch.float64
    if not net.spec.is_uniform:
        perms, scales = random_group_element(net.spec, generator, batch, permute=permute, dtype=dtype)
        return apply_group_element(net, perms, scales)
    kind = scale_kind(net.spec.hidden_activation)
    out = scale_hidden(net, random_scales(net.spec, generator, kind, batch, dtype=dtype))
    if permute:
        out = permute_hidden(out, random_permutations(net.spec, generator, batch))
    return out
