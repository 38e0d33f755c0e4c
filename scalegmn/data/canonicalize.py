"""Phase (and sign) canonicalization of sine INRs, with function preservation checked.

For a SIREN hidden neuron ``sin(ω (w·x + b))`` with period ``P = π/ω`` the function-preserving
moves are (docs/model.md §4.7): T1 ``b += 2kP``; T2 ``b += P`` with its OUTGOING weights
negated; T3 ``(w, b, c) -> (-w, -b, -c)`` (the sign symmetry). The map used here is

    m = round(b / P);   b <- b - m P  ∈ [-P/2, P/2];   c <- (-1)^m c;   w unchanged,

exact because ``sin(ω(z - mP)) = (-1)^m sin(ωz)``. It is idempotent, maps every T1/T2 orbit to
one point and commutes with T3. ``phase+sign`` then applies T3 to every neuron with ``b < 0``
(via :func:`scalegmn.weightspace.symmetry.scale_hidden`), giving ``b ∈ [0, P/2]``. Inputs, the output layer
and its bias are never touched.

``none`` changes nothing and reports max |b| per hidden layer: the original repository's script
is the identity exactly when every hidden ``|b| <= π/2`` (docs/datasets.md §7.3), which is asserted.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import torch

from scalegmn.atomic import atomic_write
from scalegmn.data.acquire import sha256_of
from scalegmn.data.network_set import NetworkSet, is_flat_table, network_set_spec
from scalegmn.errors import DataError
from scalegmn.weightspace.functional import render
from scalegmn.weightspace.network import Network
from scalegmn.weightspace.symmetry import scale_hidden

logger = logging.getLogger(__name__)

MODES = ("none", "phase", "phase+sign")
TOLERANCE = 1e-4
BLOCK = 4096  # networks per block: bounds memory on real zoos


def _check_sine(net: Network) -> None:
    if net.spec.is_cnn or net.spec.hidden_activation != "sine":
        raise ValueError(
            f"phase canonicalization needs a sine INR, got hidden activation "
            f"{net.spec.activations[0]!r} (layout {net.spec.layout}); use canonicalize: none"
        )


def phase_canonicalize(net: Network) -> Network:
    """Shift every hidden bias into ``[-P/2, P/2]`` (P = π/ω0), negating outgoing weights by (-1)^m."""
    _check_sine(net)
    period = math.pi / net.spec.omega0
    weights, biases = list(net.weights), list(net.biases)
    for layer in range(net.spec.n_layers - 1):  # hidden layers only
        b = biases[layer]
        m = torch.round(b / period)
        biases[layer] = b - m * period
        flip = 1.0 - 2.0 * torch.remainder(m, 2.0)  # (-1)^m, shape (*batch, n_hidden)
        # Column j of the next layer's weight multiplies neuron j's output.
        weights[layer + 1] = weights[layer + 1] * flip.unsqueeze(-2).to(weights[layer + 1].dtype)
    return net.replace(weights=tuple(weights), biases=tuple(biases))


def sign_canonicalize(net: Network) -> Network:
    """Apply the sign symmetry T3 to every hidden neuron whose bias is negative."""
    _check_sine(net)
    q = [torch.where(b < 0, -1.0, 1.0).to(b.dtype) for b in net.biases[:-1]]
    return scale_hidden(net, q)


def canonicalize(net: Network, mode: str) -> Network:
    """``mode`` in :data:`MODES`."""
    if mode == "none":
        return net
    if mode == "phase":
        return phase_canonicalize(net)
    if mode == "phase+sign":
        return sign_canonicalize(phase_canonicalize(net))
    raise ValueError(f"canonicalization mode {mode!r}: use one of {MODES}")


def hidden_bias_max(net: Network) -> list[float]:
    """Max |b| over all networks, per hidden layer."""
    return [float(b.abs().max()) if b.numel() else 0.0 for b in net.biases[:-1]]


def render_shape(net: Network) -> tuple[int, int]:
    """The image size an INR of this spec was fitted to (28 for 1 channel, 32 for RGB)."""
    return (28, 28) if net.spec.layout[-1] == 1 else (32, 32)


def render_difference(before: Network, after: Network, *, block: int = 256) -> torch.Tensor:
    """``(B,)`` max absolute pixel difference of the renders, computed in float64."""
    shape = render_shape(before)
    n = before.batch_shape[0]
    out = torch.empty(n, dtype=torch.float64)
    for lo in range(0, n, block):
        sl = slice(lo, lo + block)
        a = before.replace(weights=tuple(w[sl] for w in before.weights),
                           biases=tuple(b[sl] for b in before.biases)).to(torch.float64)
        b = after.replace(weights=tuple(w[sl] for w in after.weights),
                          biases=tuple(b_[sl] for b_ in after.biases)).to(torch.float64)
        out[sl] = (render(a, shape) - render(b, shape)).abs().flatten(1).amax(1)
        if lo and (lo // block) % 20 == 0:
            logger.info("checked %d/%d networks", lo, n)
    return out


class _Stats:
    """Summary figures accumulated over blocks of networks."""

    def __init__(self, mode: str, n_hidden: int, is_sine: bool, tolerance: float):
        self.mode, self.is_sine, self.tolerance = mode, is_sine, tolerance
        self.before, self.after = [0.0] * n_hidden, [0.0] * n_hidden
        self.n = self.changed_networks = self.changed_parameters = 0
        self.max_diff = self.sum_diff = 0.0

    def block(self, net: Network, sources, where: str) -> Network:
        """Canonicalize one block, check it, and record its figures."""
        n = int(net.batch_shape[0])
        self.n += n
        if self.is_sine:
            self.before = [max(a, b) for a, b in zip(self.before, hidden_bias_max(net), strict=True)]
        if self.mode == "none" or n == 0:
            return net
        out = canonicalize(net, self.mode)
        diff = render_difference(net, out)
        changed = net.flat() != out.flat()
        self.after = [max(a, b) for a, b in zip(self.after, hidden_bias_max(out), strict=True)]
        self.changed_networks += int(changed.any(dim=1).sum())
        self.changed_parameters += int(changed.sum())
        self.max_diff = max(self.max_diff, float(diff.max()))
        self.sum_diff += float(diff.sum())
        bad = np.flatnonzero((diff > self.tolerance).numpy())
        if bad.size:
            raise DataError(str(sources[bad[0]]), f"canonicalization changed the rendered image by "
                            f"{float(diff[bad[0]]):.3g} > {self.tolerance} ({bad.size} networks in this "
                            "block); this is a bug, please report it")
        logger.info("canonicalized %d networks; max render difference so far %.3g", self.n, self.max_diff)
        return out

    def summary(self, where: str) -> dict:
        out: dict = {"mode": self.mode, "n_networks": self.n, "tolerance": self.tolerance,
                     "max_render_difference": self.max_diff}
        if self.is_sine:
            out["max_abs_hidden_bias_before"] = self.before
            worst = max(self.before, default=0.0)
            out["original_script_is_identity"] = worst <= math.pi / 2
            logger.info("max |b| per hidden layer before: %s", self.before)
        if self.mode != "none":
            out.update(max_abs_hidden_bias_after=self.after, changed_networks=self.changed_networks,
                       changed_parameters=self.changed_parameters,
                       mean_render_difference=self.sum_diff / max(self.n, 1))
        elif self.is_sine and not out["original_script_is_identity"]:
            raise DataError(where, f"a hidden bias has |b| = {max(self.before):.3f} > pi/2, so skipping "
                                   "canonicalization is not what the original does; set "
                                   "canonicalize: phase for this dataset")
        return out


def _stats(spec, mode: str, tolerance: float) -> _Stats:
    is_sine = not spec.is_cnn and spec.activations[0] == "sine"
    if mode != "none" and not is_sine:
        raise ValueError(f"canonicalization mode {mode!r} needs a sine INR; use canonicalize: none")
    return _Stats(mode, spec.n_layers - 1, is_sine, tolerance)


def canonicalize_table(
    table: NetworkSet, mode: str, *, tolerance: float = TOLERANCE, block: int = BLOCK
) -> tuple[NetworkSet, dict]:
    """Canonicalize every network of a table and check that each computes the same function.

    Returns the new table and a JSON summary (mode, max |b| per hidden layer before and after,
    changed parameters, max render difference). Raises DataError if any network's render
    changes by more than ``tolerance``, or, for ``none`` on a sine INR, if some hidden
    ``|b| > π/2`` (then the original script would not be the identity).
    """
    where = str(table.attrs.get("dataset", "table"))
    stats = _stats(table.spec, mode, tolerance)
    parts = []
    for lo in range(0, max(table.size, 1), block):
        rows = np.arange(lo, min(lo + block, table.size))
        parts.append(stats.block(table.network(rows), table.columns["source"][rows], where))
    summary = stats.summary(where)
    if mode == "none":
        return table, summary
    net = Network(table.spec, tuple(torch.cat([p.weights[i] for p in parts]) for i in range(table.spec.n_layers)),
                  tuple(torch.cat([p.biases[i] for p in parts]) for i in range(table.spec.n_layers)))
    return table.with_network(net), summary


def canonicalize_file(table_in: str | Path, table_out: str | Path, summary_out: str | Path, *, mode: str,
                      tolerance: float = TOLERANCE, block: int = BLOCK) -> dict:
    """The canonicalize stage, streamed in blocks (a real zoo need not fit in memory).

    Copies the table, rewrites its weights block by block, checks every network's render,
    renames into place, then writes the JSON summary (with the sha256 of the written table,
    provenance for the cache).
    """
    table_out, summary_out = Path(table_out), Path(summary_out)
    if is_flat_table(table_in):
        return _copy_flat(table_in, table_out, summary_out, mode)
    spec = network_set_spec(table_in)
    stats = _stats(spec, mode, tolerance)
    with atomic_write(table_out) as tmp:
        shutil.copyfile(table_in, tmp)
        with h5py.File(tmp, "r+") as f:
            where = json.loads(f.attrs.get("dataset", '"table"'))
            n = int(f.attrs["n_networks"])
            sources = f["columns"]["source"].asstr()
            for lo in range(0, max(n, 1), block):
                hi = min(lo + block, n)
                net = Network(spec, tuple(torch.from_numpy(f["weights"][str(i)][lo:hi]) for i in range(spec.n_layers)),
                              tuple(torch.from_numpy(f["biases"][str(i)][lo:hi]) for i in range(spec.n_layers)))
                out = stats.block(net, sources[lo:hi], where)
                if mode != "none":
                    for i in range(spec.n_layers):
                        f["weights"][str(i)][lo:hi] = out.weights[i].numpy()
                        f["biases"][str(i)][lo:hi] = out.biases[i].numpy()
            summary = stats.summary(where)
            f.attrs["canonicalize"] = json.dumps(mode)
    summary["dataset"] = where
    summary["table_sha256"] = sha256_of(table_out)
    with atomic_write(summary_out) as tmp_json:
        tmp_json.write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def _copy_flat(table_in: str | Path, table_out: Path, summary_out: Path, mode: str) -> dict:
    """A table of many architectures (CNN Wild Park): CNNs, so ``none`` only; copied as it is."""
    if mode != "none":
        raise ValueError(f"canonicalization mode {mode!r} needs a sine INR; use canonicalize: none")
    with atomic_write(table_out) as tmp:
        shutil.copyfile(table_in, tmp)
        with h5py.File(tmp, "r+") as f:
            where = json.loads(f.attrs.get("dataset", '"table"'))
            n = int(f.attrs["n_networks"])
            f.attrs["canonicalize"] = json.dumps(mode)
    logger.info("%s: %d networks of several architectures copied unchanged (canonicalize: none)", where, n)
    summary = {"mode": mode, "dataset": where, "n_networks": n, "table_sha256": sha256_of(table_out)}
    with atomic_write(summary_out) as tmp_json:
        tmp_json.write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary
