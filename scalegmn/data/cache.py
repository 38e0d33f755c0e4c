"""The graph cache: one zarr v3 store per view and split, and the in-memory loader training uses.

Store layout, format version 2 (every array has a ``description`` attribute; the group explains
itself). The store holds the graph tensors the model consumes, layer by layer, with no per-graph
intermediate: the layer-major graph of a network (``scalegmn.nn.graph_batch.from_weight_batch``)
has one edge block per weight layer and one node block per layer of neurons, and

- ``arch/<a>/weight_<l>`` float32 ``(n_a, out, in[, kh, kw])``: edge block l of the networks of
  architecture a, in PyTorch order (edge j -> i of layer l carries ``[n, i, j]``);
- ``arch/<a>/bias_<l>`` float32 ``(n_a, out)``: node block l + 1 (input nodes carry a constant);
- ``arch/<a>/rows`` int64 ``(n_a,)``: the store rows of those networks; ``arch_id`` int32 per row;
- ``arch/<a>/`` also holds the topology (``edge_index``, ``node_type``, ``edge_type``,
  ``node_layer``) and the spec JSON, stored once per architecture;
- per row: ``y`` (int64 labels or float32 targets), ``activation`` (str), ``sign_mask`` (bool: odd
  hidden activation), ``source`` (str), ``table_row`` (row in the dataset's weight table),
  ``images`` (uint8 ``(N, 28, 28)`` originals for MNIST editing, when available).

:func:`load_split` reads the blocks straight into the per-layer tensors a
:class:`~scalegmn.weightspace.batch.WeightBatch` holds. Version 1 stores (flat per-graph
``node_feat``/``edge_feat``) are refused with a one-line error that says to rebuild them.

Per-architecture groups make mixed layouts possible. A zoo of thousands of architectures (CNN
Wild Park: one per training run) would need tens of thousands of arrays that way, so its stores
have the *flat* layout (attribute ``layout = "flat"``): ``params`` float32 ``(P,)`` holds every
network's parameters (layer order, weight then bias) one after the other, ``offset`` int64
``(N,)`` where each starts, ``arch_id`` per row and the architectures as the ``specs``
attribute; no topology (the models build it from the spec). :func:`load_split` reads it into a
:class:`~scalegmn.data.split_protocol.MixedSplit` whose batches are
:class:`~scalegmn.weightspace.batch.MixedBatch`. Symmetry copies are not made for such stores
(logged): the random transforms of mixed architectures are not part of the data stage.

Arrays are sharded: chunks of
64 networks, shards of 4096 networks, no compression (float weights do not compress;
measured on the stand-in stores: benchmarks/cache_throughput.py). Stores are written to ``<path>.tmp`` and renamed.

Training never reads per sample from zarr: :func:`load_split` reads whole arrays once into
memory (optionally onto the GPU) and indexes tensors from then on; a split too large for that
is streamed by :class:`scalegmn.data.stream.StreamedSplit`.

Bounded memory (``memory_mb`` of :func:`build_view_stores`, default :data:`BUILD_MEMORY_MB`): a
dataset whose canonical table fits a third of the budget is built in memory (one read of the
table); a larger one (the real CIFAR-10 INR set with 20 augmentation copies: ~1M networks) block
by block: each block of a split's rows is read from the table (in windows of rows, so scattered
rows never pull the whole table), augmented and written into the store's shards. Both give the
same store, except that symmetry copies of a streamed build are drawn per block (valid copies,
other random draws).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import zarr

from scalegmn import __version__
from scalegmn.atomic import atomic_directory
from scalegmn.data.augment import symmetry_copies, symmetry_copies_mixed
from scalegmn.data.formats.cnn_zoo import FINAL_STEP
from scalegmn.data.network_set import (
    is_flat_table,
    network_set_spec,
    read_flat_network_set,
    read_network_set,
)
from scalegmn.data.split_protocol import ArchitectureBatchSampler, MixedSplit, group_rows
from scalegmn.data.splits import read_splits
from scalegmn.errors import DataError
from scalegmn.weightspace.batch import MixedBatch, WeightBatch
from scalegmn.weightspace.graph import topology
from scalegmn.weightspace.network import Network, NetworkSpec, is_odd

logger = logging.getLogger(__name__)

STORE_FORMAT = "scalegmn-graph-cache"
STORE_VERSION = 2
CHUNK_NETWORKS = 64
SHARD_NETWORKS = 4096
#: Default peak-memory budget of a store build, MB (see the module docstring).
BUILD_MEMORY_MB = 1024.0


@dataclass
class StoreContent:
    """What goes into one store: batches (one per architecture) and per-network columns.

    The columns follow the order of ``nets`` concatenated.
    """

    nets: list[Network]
    y: np.ndarray
    activation: np.ndarray
    source: np.ndarray
    table_row: np.ndarray
    images: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of networks, over all of ``nets``."""
        return sum(int(n.batch_shape[0]) for n in self.nets)


def _create(group: zarr.Group, name: str, data: np.ndarray, description: str, per_net: int = 1) -> None:
    """A sharded array (chunks of 64 networks, shards of 4096) with a description."""
    data = np.asarray(data)
    if data.dtype.kind in ("U", "O", "T"):
        arr = group.create_array(name, shape=data.shape, dtype=str, attributes={"description": description})
        if data.size:
            arr[...] = data.astype(str)
        return
    arr = _create_empty(group, name, data.shape, data.dtype, description, per_net)
    if data.size:
        arr[...] = data


def _create_empty(group: zarr.Group, name: str, shape: tuple[int, ...], dtype, description: str,
                  per_net: int = 1) -> zarr.Array:
    """The sharded numeric array of :func:`_create`, unfilled (written block by block)."""
    rest = tuple(shape[1:])
    length = max(1, shape[0]) if len(shape) else 1
    # Chunks of 64 networks, shards of 4096, but never bigger than the array: a partial chunk
    # is stored padded to full size.
    chunk0 = max(1, min(CHUNK_NETWORKS * per_net, length))
    shard0 = min(chunk0 * (SHARD_NETWORKS // CHUNK_NETWORKS), -(-length // chunk0) * chunk0)
    return group.create_array(
        name,
        shape=tuple(shape),
        dtype=dtype,
        chunks=(chunk0, *rest),
        shards=(shard0, *rest),
        compressors=None,
        attributes={"description": description},
    )


def _write_blocks(group: zarr.Group, spec: NetworkSpec, nets: list[Network], rows: np.ndarray) -> None:
    """The graph blocks of one architecture's networks: per layer its edge block (the weight)
    and node block (the bias), and the store rows they belong to."""
    _create(group, "rows", rows.astype(np.int64), "store row of each network of this architecture")
    for layer in range(spec.n_layers):
        weight = torch.cat([n.weights[layer] for n in nets])
        bias = torch.cat([n.biases[layer] for n in nets])
        _create(group, f"weight_{layer}", weight.numpy(),
                f"edge block of layer {layer}: the weight of edge j -> i at [n, i, j] (PyTorch order)")
        _create(group, f"bias_{layer}", bias.numpy(),
                f"node block of layer {layer + 1}: the bias of each neuron")


def _write_topology(group: zarr.Group, spec: NetworkSpec) -> None:
    topo = topology(spec)
    for name, t, desc in (
        ("edge_index", topo.edge_index, "(2, E) source, target node of each edge"),
        ("node_type", topo.node_type, "positional type of each node"),
        ("edge_type", topo.edge_type, "positional type of each edge"),
        ("node_layer", topo.node_layer, "layer of each node (0 = inputs)"),
    ):
        group.create_array(name, data=t.numpy(), attributes={"description": desc})


def write_store(path: str | Path, content: StoreContent, attrs: dict[str, Any]) -> Path:
    """Write ``content`` as a zarr v3 store at ``path`` (via ``path.tmp``, then rename)."""
    path = Path(path)
    t0 = time.monotonic()
    with atomic_directory(path) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        specs: list[str] = []  # spec key of each architecture, in order of first appearance
        arch_ids: list[int] = []
        for net in content.nets:
            if net.spec.key() not in specs:
                specs.append(net.spec.key())
            arch_ids += [specs.index(net.spec.key())] * int(net.batch_shape[0])
        arch_ids_np = np.asarray(arch_ids, dtype=np.int32)
        _write_columns(root, arch_ids_np, content)
        arch = root.create_group("arch", attributes={"description": "graph blocks and topology per architecture"})
        for a, key in enumerate(specs):
            spec = NetworkSpec.from_dict(json.loads(key))
            g = arch.create_group(str(a), attributes={"spec": json.loads(key),
                                                      "description": f"layout {list(spec.layout)}"})
            _write_blocks(g, spec, [n.to(torch.float32) for n in content.nets if n.spec.key() == key],
                          np.flatnonzero(arch_ids_np == a))
            _write_topology(g, spec)
        _write_attrs(root, content.size, len(specs), attrs)
    logger.info("wrote %d networks to %s in %.2f s", content.size, path, time.monotonic() - t0)
    return path


def _write_columns(root: zarr.Group, arch_ids: np.ndarray, content: StoreContent) -> None:
    """The per-row arrays of a store (``content.nets`` unused)."""
    _create(root, "arch_id", arch_ids, "architecture of each network (arch/<id>)")
    _create(root, "y", content.y, "class label (int64) or regression target (float32)")
    _create(root, "activation", content.activation, "hidden activation of each network")
    odd = np.array([is_odd(a) for a in content.activation.astype(str)], dtype=bool)
    _create(root, "sign_mask", odd, "True where the hidden activation is odd (sign symmetry)")
    _create(root, "source", content.source, "where each network came from (file or weights.npy#row)")
    _create(root, "table_row", np.asarray(content.table_row, dtype=np.int64),
            "row in the dataset's weight table (canonical.h5); -1 never")
    if content.images is not None:
        _create(root, "images", content.images.astype(np.uint8),
                "original 28x28 uint8 image each INR was fit to (INR editing)")


def _write_attrs(root: zarr.Group, n: int, n_arch: int, attrs: dict[str, Any]) -> None:
    root.attrs.update({
        "format": STORE_FORMAT,
        "format_version": STORE_VERSION,
        "n_networks": n,
        "n_architectures": n_arch,
        "input_node_value": 0.0,
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **attrs,
    })


def write_store_blocks(path: str | Path, spec: NetworkSpec, content: StoreContent,
                       blocks: Iterator[tuple[int, Network]], attrs: dict[str, Any]) -> Path:
    """A store of one architecture written block by block: ``content`` holds the per-row columns
    (``content.nets`` empty), ``blocks`` yields ``(first row, networks)`` covering every row in
    order. Peak memory: one block (plus the columns)."""
    path = Path(path)
    t0 = time.monotonic()
    n = int(np.asarray(content.y).shape[0])
    with atomic_directory(path) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        _write_columns(root, np.zeros(n, dtype=np.int32), content)
        arch = root.create_group("arch", attributes={"description": "graph blocks and topology per architecture"})
        g = arch.create_group("0", attributes={"spec": json.loads(spec.key()),
                                               "description": f"layout {list(spec.layout)}"})
        _create(g, "rows", np.arange(n, dtype=np.int64), "store row of each network of this architecture")
        arrays = []
        for layer in range(spec.n_layers):
            arrays.append(_create_empty(
                g, f"weight_{layer}", (n, *spec.weight_shape(layer)), np.float32,
                f"edge block of layer {layer}: the weight of edge j -> i at [n, i, j] (PyTorch order)"))
            arrays.append(_create_empty(g, f"bias_{layer}", (n, *spec.bias_shape(layer)), np.float32,
                                        f"node block of layer {layer + 1}: the bias of each neuron"))
        done = 0
        for lo, net in blocks:
            if lo != done:
                raise ValueError(f"blocks out of order: row {lo}, expected {done}")
            hi = lo + int(net.batch_shape[0])
            for layer in range(spec.n_layers):
                arrays[2 * layer][lo:hi] = net.weights[layer].to(torch.float32).numpy()
                arrays[2 * layer + 1][lo:hi] = net.biases[layer].to(torch.float32).numpy()
            done = hi
        if done != n:
            raise ValueError(f"blocks cover {done} of {n} rows")
        _write_topology(g, spec)
        _write_attrs(root, n, 1, attrs)
    logger.info("wrote %d networks to %s block by block in %.2f s", n, path, time.monotonic() - t0)
    return path


# ---------------------------------------------------------------------------------------------
# loading


@dataclass
class CachedSplit(torch.utils.data.Dataset):
    """One split in memory, a :class:`scalegmn.data.split_protocol.Split`. Index it with :meth:`get` / :meth:`batches`.

    For one layout, ``spec`` is the architecture (for a mixed relu+tanh zoo the layout is
    shared: ``spec`` is the ReLU one and ``sign_mask`` says which are tanh). For mixed layouts
    ``spec`` raises; use :meth:`groups`.

    It is a ``torch.utils.data.Dataset``: ``len(split)``; ``split[i]`` is one network as a dict of
    tensors (``weights``, ``biases``: per-layer tuples in PyTorch layout; ``y``; ``index``), which
    the default collate stacks; ``split[rows]`` with a list of rows is a
    :class:`~scalegmn.weightspace.batch.WeightBatch`. :meth:`loader` is a DataLoader on the fast
    path (whole batches of one architecture, one indexing per layer tensor).

    Attributes:
        size: number of networks; ``y``: ``(N,)`` long labels or float targets;
        task_kind: "classification" | "regression"; n_classes: int or None;
        sign_mask: ``(N,)`` bool (True = odd activation) when activations are mixed, else None;
        sources: per-network source ids; images: ``(N, 1, 28, 28)`` float in [0, 1] or None;
        attrs: the store's provenance attributes (plus ``path``).
    """

    specs: list[NetworkSpec]
    arch_id: torch.Tensor
    weights: list[tuple[torch.Tensor, ...]]  # per architecture: (n_a, ...) tensors
    biases: list[tuple[torch.Tensor, ...]]
    arch_pos: torch.Tensor  # position of each network inside its architecture's tensors
    y: torch.Tensor
    sign_mask: torch.Tensor | None
    sources: list[str]
    images: torch.Tensor | None
    task_kind: str
    n_classes: int | None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of networks N."""
        return int(self.y.shape[0])

    @property
    def spec(self) -> NetworkSpec:
        """The architecture; raises :class:`DataError` for mixed layouts (see :meth:`groups`)."""
        if len(self.specs) != 1:
            raise DataError(self.attrs.get("path", "store"),
                            f"holds {len(self.specs)} architectures; use .groups() for one CachedSplit each, "
                            "or .specs (mixed rows come as MixedBatch)")
        return self.specs[0]

    @property
    def is_mixed(self) -> bool:
        """Whether the split holds several architectures (then batches may be MixedBatch)."""
        return len(self.specs) > 1

    def _mixed(self, idx: torch.Tensor) -> MixedBatch:
        """Rows of several architectures: a MixedBatch, rows grouped by architecture."""
        idx, groups = group_rows(self.arch_id, idx)
        nets = tuple(Network(self.specs[a], tuple(w[self.arch_pos[r]] for w in self.weights[a]),
                             tuple(b[self.arch_pos[r]] for b in self.biases[a])) for a, r in groups)
        return MixedBatch(groups=nets, y=self.y[idx], index=idx)

    def get(self, indices: torch.Tensor | np.ndarray | list[int]) -> WeightBatch | MixedBatch:
        """The networks at ``indices`` (rows of this split) on this split's device: a WeightBatch
        when they share one architecture, else a MixedBatch (rows grouped by architecture)."""
        # non-blocking: a split resident on the GPU gets its indices without a host wait
        idx = torch.as_tensor(indices, dtype=torch.long).to(self.y.device, non_blocking=True)
        if len(self.specs) == 1:
            arch, pos = 0, idx
        else:
            archs = torch.unique(self.arch_id[idx]).tolist()
            if len(archs) != 1:
                return self._mixed(idx)
            arch, pos = int(archs[0]), self.arch_pos[idx]
        net = Network(self.specs[arch], tuple(w[pos] for w in self.weights[arch]),
                      tuple(b[pos] for b in self.biases[arch]))
        return WeightBatch(
            net=net,
            y=self.y[idx],
            sign_mask=None if self.sign_mask is None else self.sign_mask[idx],
            index=idx,
        )

    def __len__(self) -> int:
        """Number of networks N (``torch.utils.data.Dataset``)."""
        return self.size

    def __getitem__(self, index: int | list[int] | torch.Tensor | np.ndarray) -> dict[str, Any] | WeightBatch:
        """Network ``index`` as a dict of tensors, or the rows of a list/tensor as a WeightBatch."""
        if not isinstance(index, (int, np.integer)):
            return self.get(index)
        i = int(index)
        if not -self.size <= i < self.size:
            raise IndexError(f"network {i} out of range for a split of {self.size}")
        i %= self.size
        arch, pos = int(self.arch_id[i]), int(self.arch_pos[i])
        return {"weights": tuple(w[pos] for w in self.weights[arch]), "biases": tuple(b[pos] for b in self.biases[arch]),
                "y": self.y[i], "index": i}

    def loader(self, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
               generator: torch.Generator | None = None, **kwargs: Any) -> torch.utils.data.DataLoader:
        """A DataLoader of WeightBatches, each of one architecture (extra ``kwargs`` go to DataLoader)."""
        sampler = ArchitectureBatchSampler(self.arch_id, batch_size, shuffle=shuffle, drop_last=drop_last,
                                           generator=generator)
        return torch.utils.data.DataLoader(self, sampler=sampler, batch_size=None, **kwargs)

    def batches(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[WeightBatch]:
        """Mini-batches over the whole split (a fresh permutation per call when shuffling)."""
        order = torch.randperm(self.size, generator=generator) if shuffle else torch.arange(self.size)
        stop = self.size - (self.size % batch_size if drop_last else 0)
        for lo in range(0, stop, batch_size):
            yield self.get(order[lo : lo + batch_size].to(self.y.device))

    def groups(self) -> list[CachedSplit]:
        """One CachedSplit per architecture (a list of one when the layout is shared)."""
        if len(self.specs) == 1:
            return [self]
        out = []
        for a, spec in enumerate(self.specs):
            rows = torch.nonzero(self.arch_id == a).flatten()
            out.append(CachedSplit(
                specs=[spec], arch_id=torch.zeros(len(rows), dtype=torch.long, device=rows.device),
                weights=[self.weights[a]], biases=[self.biases[a]],
                arch_pos=torch.arange(len(rows), device=rows.device), y=self.y[rows],
                sign_mask=None if self.sign_mask is None else self.sign_mask[rows],
                sources=[self.sources[i] for i in rows.tolist()],
                images=None if self.images is None else self.images[rows],
                task_kind=self.task_kind, n_classes=self.n_classes,
                attrs={**self.attrs, "architecture": a},
            ))
        return out


def _read_blocks(group: zarr.Group, spec: NetworkSpec) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(store rows, weights, biases) of one architecture: its graph blocks, layer by layer."""
    return (group["rows"][...],
            tuple(group[f"weight_{layer}"][...] for layer in range(spec.n_layers)),
            tuple(group[f"bias_{layer}"][...] for layer in range(spec.n_layers)))


def load_split(store_path: str | Path, device: str | torch.device = "cpu") -> CachedSplit:
    """Read a whole cached split into memory once (then onto ``device``)."""
    path = Path(store_path)
    t0 = time.monotonic()
    try:
        root = zarr.open_group(path, mode="r")
        attrs = dict(root.attrs)
        if attrs.get("format") != STORE_FORMAT:
            raise DataError(path, f"not a {STORE_FORMAT} store (format={attrs.get('format')!r})")
        if attrs.get("format_version") != STORE_VERSION:
            raise DataError(path, f"cache store of format version {attrs.get('format_version')}, this scalegmn "
                                  f"reads version {STORE_VERSION}; delete it and rebuild it with snakemake")
        if attrs.get("layout") == "flat":
            return _load_flat(root, attrs, path, device, t0)
        arch_id = root["arch_id"][...]
        y = root["y"][...]
        activation = np.array([str(a) for a in root["activation"][...]], dtype=str)
        sources = [str(s) for s in root["source"][...]]
        images = root["images"][...] if "images" in root else None
        specs = [NetworkSpec.from_dict(dict(root["arch"][str(a)].attrs["spec"]))
                 for a in range(int(attrs["n_architectures"]))]
        blocks = [_read_blocks(root["arch"][str(a)], spec) for a, spec in enumerate(specs)]
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as err:  # missing, incomplete or corrupt (checksums, JSON)
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise DataError(path, f"incomplete, corrupt or missing cache store ({reason}); delete it and "
                              "rebuild it with snakemake") from None
    weights, biases = [], []
    arch_pos = np.zeros(len(arch_id), dtype=np.int64)
    for rows, w, b in blocks:
        arch_pos[rows] = np.arange(len(rows))
        weights.append(tuple(torch.from_numpy(t).to(device) for t in w))
        biases.append(tuple(torch.from_numpy(t).to(device) for t in b))
    acts = sorted(set(activation.tolist()))
    sign_mask = None
    if len(acts) > 1:
        sign_mask = torch.tensor([is_odd(a) for a in activation.tolist()], device=device)
    task = "classification" if y.dtype.kind in "iu" else "regression"
    y_t = torch.from_numpy(y.astype(np.int64) if task == "classification" else y.astype(np.float32)).to(device)
    imgs = None
    if images is not None:
        imgs = (torch.from_numpy(images).float().div_(255.0).unsqueeze(1)).to(device)
    attrs["path"] = str(path)
    split = CachedSplit(
        specs=specs, arch_id=torch.from_numpy(arch_id.astype(np.int64)).to(device),
        weights=weights, biases=biases, arch_pos=torch.from_numpy(arch_pos).to(device),
        y=y_t, sign_mask=sign_mask, sources=sources, images=imgs, task_kind=task,
        n_classes=attrs.get("n_classes") if task == "classification" else None, attrs=attrs,
    )
    mb = sum(t.nbytes for _, w, b in blocks for t in (*w, *b)) / 1e6
    dt = time.monotonic() - t0
    logger.info("loaded %d networks (%.1f MB) from %s in %.2f s", split.size, mb, path, dt)
    return split


def _load_flat(root: zarr.Group, attrs: dict[str, Any], path: Path, device, t0: float) -> MixedSplit:
    """A flat-layout store (module docstring) as a MixedSplit."""
    specs = [NetworkSpec.from_dict(d) for d in attrs["specs"]]
    y = root["y"][...]
    task = "classification" if y.dtype.kind in "iu" else "regression"
    y_t = torch.from_numpy(y.astype(np.int64) if task == "classification" else y.astype(np.float32)).to(device)
    params = torch.from_numpy(root["params"][...]).to(device)
    attrs["path"] = str(path)
    split = MixedSplit(specs=specs, params=params, offset=torch.from_numpy(root["offset"][...]).to(device),
                       arch_id=torch.from_numpy(root["arch_id"][...].astype(np.int64)).to(device), y=y_t,
                       sources=[str(s) for s in root["source"][...]], task_kind=task,
                       n_classes=attrs.get("n_classes") if task == "classification" else None, attrs=attrs)
    logger.info("loaded %d networks of %d architectures (%.1f MB) from %s in %.2f s", split.size, len(specs),
                params.nbytes / 1e6, path, time.monotonic() - t0)
    return split


def write_flat_store(path: str | Path, specs: list[NetworkSpec], arch: np.ndarray, content: StoreContent,
                     blocks: Iterator[np.ndarray], attrs: dict[str, Any]) -> Path:
    """A flat-layout store: ``content`` holds the per-row columns, ``arch`` each row's index into
    ``specs``, ``blocks`` yields the rows' flat parameters in row order (any block sizes)."""
    path = Path(path)
    t0 = time.monotonic()
    sizes = np.array([s.num_params for s in specs], dtype=np.int64)
    n_params = sizes[arch] if len(arch) else np.zeros(0, np.int64)
    offset = np.concatenate([[0], np.cumsum(n_params)[:-1]]).astype(np.int64) if len(arch) else n_params
    total = int(n_params.sum())
    with atomic_directory(path) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        _create(root, "arch_id", arch.astype(np.int32), "architecture of each network (index into attribute specs)")
        _create(root, "offset", offset, "where each network's parameters start in params")
        _create(root, "y", content.y, "class label (int64) or regression target (float32)")
        _create(root, "activation", content.activation, "activation of each conv layer, comma-separated")
        _create(root, "source", content.source, "where each network came from (file)")
        _create(root, "table_row", np.asarray(content.table_row, dtype=np.int64),
                "row in the dataset's weight table (canonical.h5)")
        params = _create_empty(root, "params", (total,), np.float32,
                               "every network's parameters, layer order, weight then bias, one after the other",
                               per_net=4096)
        done = 0
        for block in blocks:
            params[done: done + block.size] = block
            done += block.size
        if done != total:
            raise ValueError(f"blocks cover {done} of {total} parameters")
        _write_attrs(root, len(arch), len(specs), {**attrs, "layout": "flat",
                                                   "specs": [s.to_dict() for s in specs]})
    logger.info("wrote %d networks of %d architectures to %s in %.2f s", len(arch), len(specs), path,
                time.monotonic() - t0)
    return path


FLAT_BLOCK_VALUES = 1 << 24  # parameters read from the table at once (64 MB of float32)


def _flat_blocks(table_path: str | Path, offsets: np.ndarray, n_params: np.ndarray) -> Iterator[np.ndarray]:
    """The parameters of the given table rows, in order, about FLAT_BLOCK_VALUES at a time."""
    with h5py.File(table_path, "r") as f:
        ds = f["flat"]["params"]
        parts, size = [], 0
        for o, n in zip(offsets.tolist(), n_params.tolist(), strict=True):
            parts.append(ds[o: o + n])
            size += n
            if size >= FLAT_BLOCK_VALUES:
                yield np.concatenate(parts)
                parts, size = [], 0
        if parts:
            yield np.concatenate(parts)


def _build_flat_split(table_path, meta, splits: dict, out: str | Path, *, view: dict, split: str,
                      provenance: dict[str, Any]) -> dict:
    """One split of a many-architecture table, streamed from the table (bounded memory)."""
    rows = np.asarray(splits[split], dtype=np.int64)
    info: dict[str, Any] = {"split_rows": int(rows.size)}
    if split == "train" and int(view.get("symmetry_copies") or 0):
        logger.warning("view %s: symmetry_copies skipped: the zoo mixes architectures (no mixed random "
                       "symmetry in the data stage)", view.get("name"))
        info["symmetry_copies_skipped"] = int(view["symmetry_copies"])
    arch_all = meta.columns["arch"]
    used = sorted(set(arch_all[rows].tolist()))
    remap = {a: i for i, a in enumerate(used)}
    specs = [meta.specs[a] for a in used]
    arch = np.array([remap[a] for a in arch_all[rows].tolist()], dtype=np.int32)
    y = meta.columns["target"][rows].astype(np.float32)
    content = StoreContent(nets=[], y=y, activation=meta.columns["activation"][rows].astype(str),
                           source=meta.columns["source"][rows].astype(str), table_row=rows)
    sizes = np.array([s.num_params for s in meta.specs], dtype=np.int64)
    blocks = _flat_blocks(table_path, meta.columns["offset"][rows], sizes[arch_all[rows]])
    attrs = _store_attrs(meta, {**view, "symmetry_copies": 0}, split, provenance, info)
    attrs["n_table_architectures"] = len(meta.specs)
    write_flat_store(out, specs, arch, content, blocks, attrs)
    return attrs


# ---------------------------------------------------------------------------------------------
# building a view's split from the canonical table


def _is_regression(table) -> bool:
    """Whether the table's networks carry regression targets (CNN zoo, a generic zoo with ``target``)."""
    return table.attrs.get("format") in ("cnn_zoo", "wild_park") or table.attrs.get("task_kind") == "regression"


def view_rows(table, splits: dict, view: dict, split: str) -> tuple[np.ndarray, dict]:
    """The table rows of one split of a view (augmentation rows of TRAIN appended, activation
    filter applied), and the counts for the store's attributes. ``table`` may hold no arrays."""
    rows = np.asarray(splits[split], dtype=np.int64)
    info: dict[str, Any] = {"split_rows": int(rows.size)}
    if split == "train" and view.get("aug_copies"):
        k = int(view["aug_copies"])
        have = sorted(int(c) for c in splits.get("aug", {}))
        if len(have) < k:
            raise DataError(table.attrs.get("dataset", "dataset"),
                            f"view asks for {k} aug copies but the dataset has {len(have)}; "
                            "lower views.<view>.aug_copies")
        extra = [np.asarray(splits["aug"][str(c)], dtype=np.int64) for c in have[:k]]
        rows = np.concatenate([rows, *extra])
        info["aug_rows"] = int(sum(e.size for e in extra))
    act = table.columns["activation"].astype(str)
    wanted = view.get("activation")
    if wanted in ("relu", "tanh"):
        rows = rows[act[rows] == wanted]
    if "run" in table.columns and "zoo_row" in table.columns and view.get("checkpoints", "final") == "final":
        rows = rows[table.columns["step"][rows] == FINAL_STEP]  # a zoo ingested with every checkpoint
    return rows, info


def _columns(table, rows: np.ndarray, view: dict, split: str, info: dict) -> StoreContent:
    """The per-row columns of a view's split (no networks), symmetry copies included."""
    acts = table.columns["activation"].astype(str)[rows]
    if _is_regression(table):
        y = table.columns["target"][rows].astype(np.float32)  # test accuracy in [0, 1]
    else:
        y = table.columns["label"][rows].astype(np.int64)
    source = table.columns["source"][rows].astype(str)
    images = table.extras["images"][rows] if "images" in table.extras else None
    table_row = rows
    k = int(view.get("symmetry_copies") or 0)
    if split == "train" and k:
        y = np.concatenate([y] + [y] * k)
        acts = np.concatenate([acts] + [acts] * k)
        source = np.concatenate([source] + [np.char.add(source, f"#sym{c + 1}") for c in range(k)])
        images = None if images is None else np.concatenate([images] * (k + 1))
        table_row = np.concatenate([rows] * (k + 1))
        info["symmetry_rows"] = int(rows.size * k)
    return StoreContent(nets=[], y=y, activation=acts, source=source, table_row=table_row, images=images)


def _symmetry_copies(net: Network, acts: np.ndarray, k: int, seed: int) -> Network:
    if len(set(acts.tolist())) > 1:
        return symmetry_copies_mixed(net, acts, k, seed=seed)
    return symmetry_copies(net, k, seed=seed)


def view_content(table, splits: dict, view: dict, split: str) -> tuple[StoreContent, dict]:
    """Select, filter and augment the networks of one split of a view.

    Args:
        table: the dataset's canonical :class:`~scalegmn.data.network_set.NetworkSet`.
        splits: the dataset's split JSON.
        view: ViewConfig fields (``activation``, ``aug_copies``, ``symmetry_copies``, ``seed``).
        split: train, val or test. Augmentation touches TRAIN only.
    """
    rows, info = view_rows(table, splits, view, split)
    content = _columns(table, rows, view, split, info)
    net = table.network(rows)
    wanted = view.get("activation")
    if wanted in ("relu", "tanh"):
        net = net.replace(spec=net.spec.with_activation(wanted))
    k = int(view.get("symmetry_copies") or 0)
    nets = [net]
    if split == "train" and k:
        acts = table.columns["activation"].astype(str)[rows]
        aug = _symmetry_copies(net, acts, k, int(view.get("seed", 0)))
        nets = [Network(net.spec, tuple(torch.cat([a, b]) for a, b in zip(net.weights, aug.weights, strict=True)),
                        tuple(torch.cat([a, b]) for a, b in zip(net.biases, aug.biases, strict=True)))]
    content.nets = nets
    return content, info


def build_cache(table_path: str | Path, splits_path: str | Path, out: str | Path, *,
                view: dict, split: str, provenance: dict[str, Any],
                memory_mb: float = BUILD_MEMORY_MB) -> dict:
    """Build the store of one (view, split) from the canonical table; returns its attributes."""
    return build_view_stores(table_path, splits_path, {split: out}, view=view, provenance=provenance,
                             memory_mb=memory_mb)[split]


def build_view_stores(table_path: str | Path, splits_path: str | Path, outs: dict[str, str | Path], *,
                      view: dict, provenance: dict[str, Any],
                      memory_mb: float = BUILD_MEMORY_MB) -> dict[str, dict]:
    """Build the stores of every split in ``outs`` (split -> path) within about ``memory_mb`` MB:
    in memory, reading the table once, when the table fits a third of it; else block by block
    (module docstring)."""
    splits = read_splits(splits_path)
    if is_flat_table(table_path):
        meta = read_flat_network_set(table_path, arrays=False)
        return {split: _build_flat_split(table_path, meta, splits, out, view=view, split=split, provenance=provenance)
                for split, out in outs.items()}
    spec = network_set_spec(table_path)
    meta = read_network_set(table_path, arrays=False)
    table_mb = meta.size * _network_bytes(spec) / 2**20
    if 3 * table_mb <= memory_mb:
        table = read_network_set(table_path)
        return {split: _build_split(table, splits, out, view=view, split=split, provenance=provenance)
                for split, out in outs.items()}
    logger.info("table of %.0f MB over a third of the %.0f MB budget: building block by block", table_mb, memory_mb)
    return {split: _build_split_streamed(table_path, meta, spec, splits, out, view=view, split=split,
                                         provenance=provenance, memory_mb=memory_mb)
            for split, out in outs.items()}


def _network_bytes(spec: NetworkSpec) -> int:
    return 4 * sum(int(np.prod(spec.weight_shape(i))) + int(np.prod(spec.bias_shape(i)))
                   for i in range(spec.n_layers))


def _block_size(spec: NetworkSpec, memory_mb: float) -> int:
    """Networks per block: a block lives about six times at once (window read, gathered block,
    tensors, augmented copy, zarr's write buffers), in whole shards when the budget allows. A
    block under one shard (budgets under ~250 MB for CIFAR-10 INRs) makes zarr read and rewrite
    the shard it lands in: slower, and the peak is at least one shard of every array (4,096
    networks: 20 MB of CIFAR-10 INRs, 78 MB of Small CNN Zoo CNNs)."""
    per = _network_bytes(spec) * 6
    n = int(memory_mb * 2**20 / 2 // per)  # half the budget: the columns and Python hold the rest
    if n >= SHARD_NETWORKS:
        return n // SHARD_NETWORKS * SHARD_NETWORKS
    return max(CHUNK_NETWORKS, n // CHUNK_NETWORKS * CHUNK_NETWORKS)


def _table_blocks(table_path: str | Path, spec: NetworkSpec, rows: np.ndarray, block: int
                  ) -> Iterator[tuple[int, Network]]:
    """``(offset, networks at rows[offset:offset + block])`` from the table, block by block; each
    block read in windows of ``block`` consecutive table rows (scattered rows never read more)."""
    with h5py.File(table_path, "r") as f:
        sets = [(f["weights"][str(i)], f["biases"][str(i)]) for i in range(spec.n_layers)]
        for lo in range(0, len(rows), block):
            r = rows[lo: lo + block]
            order = np.argsort(r, kind="stable")
            sr = r[order]
            outs = [(np.empty((len(r), *w.shape[1:]), np.float32), np.empty((len(r), *b.shape[1:]), np.float32))
                    for w, b in sets]
            i = 0
            while i < len(sr):
                a = int(sr[i])
                j = int(np.searchsorted(sr, a + block))
                take = sr[i:j] - a
                for (w, b), (ow, ob) in zip(sets, outs, strict=True):
                    ow[order[i:j]] = w[a: int(sr[j - 1]) + 1][take]
                    ob[order[i:j]] = b[a: int(sr[j - 1]) + 1][take]
                i = j
            yield lo, Network(spec, tuple(torch.from_numpy(w) for w, _ in outs),
                              tuple(torch.from_numpy(b) for _, b in outs))


def _build_split_streamed(table_path, meta, spec: NetworkSpec, splits: dict, out: str | Path, *,
                          view: dict, split: str, provenance: dict[str, Any], memory_mb: float) -> dict:
    rows, info = view_rows(meta, splits, view, split)
    content = _columns(meta, rows, view, split, info)
    wanted = view.get("activation")
    store_spec = spec.with_activation(wanted) if wanted in ("relu", "tanh") else spec
    k = int(view.get("symmetry_copies") or 0) if split == "train" else 0
    block = _block_size(store_spec, memory_mb * (1 if not k else 0.5))
    acts = meta.columns["activation"].astype(str)[rows]
    seed = int(view.get("seed", 0))

    def blocks() -> Iterator[tuple[int, Network]]:
        n = len(rows)
        for copy in range(k + 1):
            for b, (lo, net) in enumerate(_table_blocks(table_path, spec, rows, block)):
                net = net.replace(spec=store_spec)
                if copy:  # copy-major, as view_content; random draws per block (module docstring)
                    net = _symmetry_copies(net, acts[lo: lo + block], 1, seed + 7919 * (copy * n + b))
                yield copy * n + lo, net

    write_store_blocks(out, store_spec, content, blocks(), _store_attrs(meta, view, split, provenance, info))
    return _store_attrs(meta, view, split, provenance, info)


def _build_split(table, splits: dict, out: str | Path, *, view: dict, split: str,
                 provenance: dict[str, Any]) -> dict:
    content, info = view_content(table, splits, view, split)
    attrs = _store_attrs(table, view, split, provenance, info)
    write_store(out, content, attrs)
    return attrs


def _store_attrs(table, view: dict, split: str, provenance: dict[str, Any], info: dict) -> dict:
    labels = table.columns["label"]
    return {
        **provenance,
        "view": view.get("name"),
        "dataset": view.get("dataset"),
        "split": split,
        "canonicalization": table.attrs.get("canonicalize", "none"),
        "augmentation": {"aug_copies": int(view.get("aug_copies") or 0) if split == "train" else 0,
                         "symmetry_copies": int(view.get("symmetry_copies") or 0) if split == "train" else 0,
                         "seed": int(view.get("seed", 0))},
        "activation_filter": view.get("activation"),
        "task_kind": "regression" if _is_regression(table) else "classification",
        "n_classes": None if _is_regression(table) else int(labels.max()) + 1,
        "counts": info,
    }
