"""State dict <-> :class:`Network` for the SIREN formats, with checks that name the bad key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, NetworkSpec

KeyPairs = Sequence[tuple[str, str]]  # (weight key, bias key) per layer


def expected_keys(key_pairs: KeyPairs) -> list[str]:
    """Every state-dict key of ``key_pairs``, weight then bias, in layer order."""
    return [k for pair in key_pairs for k in pair]


def tensors_from_state_dict(
    path: str | Path,
    sd: Mapping[str, Any],
    spec: NetworkSpec,
    key_pairs: KeyPairs,
    *,
    extra_keys: Iterable[str] = (),
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Pick the weights and biases of ``spec`` out of ``sd`` as float32 tensors.

    ``sd`` must hold exactly the keys of ``key_pairs`` plus ``extra_keys``; every tensor must
    have the shape of ``spec`` and be finite.

    Raises:
        DataError: naming ``path`` and the offending key (missing, unexpected, not a tensor,
            wrong shape, NaN or Inf).
    """
    wanted = expected_keys(key_pairs)
    allowed = set(wanted) | set(extra_keys)
    missing = [k for k in wanted if k not in sd]
    if missing:
        raise DataError(
            path,
            f"missing key '{missing[0]}' (found keys {list(sd)}; expected {wanted}); "
            "is this file from another dataset?",
        )
    unexpected = [k for k in sd if k not in allowed]
    if unexpected:
        raise DataError(
            path,
            f"unexpected key '{unexpected[0]}' (expected exactly {sorted(allowed, key=str)}); "
            "is this file from another dataset?",
        )
    weights, biases = [], []
    for layer, (wkey, bkey) in enumerate(key_pairs):
        for key, shape, out in (
            (wkey, spec.weight_shape(layer), weights),
            (bkey, spec.bias_shape(layer), biases),
        ):
            value = sd[key]
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                kind = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
                raise DataError(path, f"key '{key}' holds {kind}, expected a float tensor")
            if tuple(value.shape) != tuple(shape):
                raise DataError(
                    path,
                    f"key '{key}' has shape {list(value.shape)}, expected {list(shape)} "
                    f"for layout {list(spec.layout)}",
                )
            if not torch.isfinite(value).all():
                what = "NaN" if torch.isnan(value).any() else "Inf"
                raise DataError(
                    path, f"key '{key}' holds {what} values; the file is corrupt, regenerate it"
                )
            out.append(value.detach().to(torch.float32).contiguous())
    return tuple(weights), tuple(biases)


def check_single(net: Network, spec: NetworkSpec, what: str) -> None:
    """Writers take one network of exactly ``spec`` (``ValueError`` otherwise)."""
    if net.spec != spec:
        raise ValueError(f"{what} needs a network of spec {spec}, got {net.spec}")
    if tuple(net.batch_shape) != ():
        raise ValueError(
            f"{what} writes one network; got a batch of shape {tuple(net.batch_shape)} "
            "(use scalegmn.weightspace.network.unstack)"
        )
    bad = net.non_finite()
    if bad is not None:
        raise ValueError(f"{what}: {net.source or 'network'} has NaN/Inf in its {bad}")


def state_dict_from_network(net: Network, key_pairs: KeyPairs) -> dict[str, torch.Tensor]:
    """Ordered ``{weight key: W, bias key: b, ...}``: CPU float32 tensors owning their storage."""
    sd: dict[str, torch.Tensor] = {}
    for (wkey, bkey), w, b in zip(key_pairs, net.weights, net.biases, strict=True):
        # clone(): a slice of a batch would otherwise save the whole batch's storage.
        sd[wkey] = w.detach().to("cpu", torch.float32).clone(memory_format=torch.contiguous_format)
        sd[bkey] = b.detach().to("cpu", torch.float32).clone(memory_format=torch.contiguous_format)
    return sd
