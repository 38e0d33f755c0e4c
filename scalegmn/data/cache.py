"""The graph cache: one zarr v3 store per view and split, and the in-memory loader training uses.

Store layout (every array has a ``description`` attribute; the group explains itself):

- ``node_feat`` float32, flat: per network its ``N`` node features (biases; input nodes 0),
  network i at ``node_offsets[i]:node_offsets[i+1]``;
- ``edge_feat`` float32, flat: per network its ``E x d_e`` edge features in the topology's
  edge order (``scalegmn.weightspace.graph.to_graph_features``), at ``edge_offsets[i]:edge_offsets[i+1]``;
- the raw weights for editing are the SAME arrays: ``scalegmn.weightspace.graph.from_graph_features``
  recovers ``(weights, biases)`` exactly, so they are not stored twice;
- ``arch_id`` int32 per network, and ``arch/<a>/`` per architecture: ``edge_index``,
  ``node_type``, ``edge_type``, ``node_layer`` plus the spec JSON (topology stored once);
- ``y`` (int64 labels or float32 targets), ``activation`` (str), ``sign_mask`` (bool: odd
  hidden activation), ``source`` (str), ``table_row`` (row in the dataset's weight table),
  ``images`` (uint8 ``(N, 28, 28)`` originals for MNIST editing, when available).

Flat arrays make mixed layouts possible (per-network offsets). Arrays are sharded: chunks of
64 networks, shards of 4096 networks, no compression (float weights do not compress;
ecosystem.md §3.3). Stores are written to ``<path>.tmp`` and renamed.

Training never reads per sample from zarr: :func:`load_split` reads whole arrays once into
memory (optionally onto the GPU) and indexes tensors from then on.
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

import numpy as np
import torch
import zarr

from scalegmn import __version__
from scalegmn.atomic import atomic_directory
from scalegmn.data.augment import symmetry_copies, symmetry_copies_mixed
from scalegmn.data.splits import read_splits
from scalegmn.data.weight_table import read_table
from scalegmn.errors import DataError
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.graph import (
    edge_feature_dim,
    from_graph_features,
    to_graph_features,
    topology,
)
from scalegmn.weightspace.network import Network, NetworkSpec

logger = logging.getLogger(__name__)

STORE_FORMAT = "scalegmn-graph-cache"
STORE_VERSION = 1
CHUNK_NETWORKS = 64
SHARD_NETWORKS = 4096


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
        return sum(int(n.batch_shape[0]) for n in self.nets)


def _create(group: zarr.Group, name: str, data: np.ndarray, description: str, per_net: int = 1) -> None:
    """A sharded array (chunks of 64 networks, shards of 4096) with a description."""
    data = np.asarray(data)
    if data.dtype.kind in ("U", "O", "T"):
        arr = group.create_array(name, shape=data.shape, dtype=str, attributes={"description": description})
        if data.size:
            arr[...] = data.astype(str)
        return
    rest = data.shape[1:]
    length = max(1, data.shape[0]) if data.ndim else 1
    # Chunks of 64 networks, shards of 4096, but never bigger than the array: a partial chunk
    # is stored padded to full size.
    chunk0 = max(1, min(CHUNK_NETWORKS * per_net, length))
    shard0 = min(chunk0 * (SHARD_NETWORKS // CHUNK_NETWORKS), -(-length // chunk0) * chunk0)
    arr = group.create_array(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=(chunk0, *rest),
        shards=(shard0, *rest),
        compressors=None,
        attributes={"description": description},
    )
    if data.size:
        arr[...] = data


def write_store(path: str | Path, content: StoreContent, attrs: dict[str, Any]) -> Path:
    """Write ``content`` as a zarr v3 store at ``path`` (via ``path.tmp``, then rename)."""
    path = Path(path)
    t0 = time.monotonic()
    with atomic_directory(path) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        node_parts, edge_parts, node_sizes, edge_sizes, arch_ids, specs = [], [], [], [], [], []
        for net in content.nets:
            n = int(net.batch_shape[0])
            key = net.spec.key()
            if key not in specs:
                specs.append(key)
            nf, ef = to_graph_features(net.to(torch.float32), input_value=0.0)
            node_parts.append(nf.reshape(-1).numpy())
            edge_parts.append(ef.reshape(-1).numpy())
            node_sizes += [net.spec.n_nodes] * n
            edge_sizes += [net.spec.n_edges * edge_feature_dim(net.spec)] * n
            arch_ids += [specs.index(key)] * n
        node_off = np.concatenate([[0], np.cumsum(node_sizes, dtype=np.int64)]).astype(np.int64)
        edge_off = np.concatenate([[0], np.cumsum(edge_sizes, dtype=np.int64)]).astype(np.int64)
        per_node = node_sizes[0] if node_sizes else 1
        per_edge = edge_sizes[0] if edge_sizes else 1
        empty = np.zeros(0, np.float32)
        _create(root, "node_feat", np.concatenate(node_parts) if node_parts else empty,
                "node features (biases; 0 on input nodes), flat; network i at node_offsets[i]:node_offsets[i+1]",
                per_node)
        _create(root, "edge_feat", np.concatenate(edge_parts) if edge_parts else empty,
                "edge features (weights, E x d_e per network, topology edge order), flat; "
                "network i at edge_offsets[i]:edge_offsets[i+1]; with node_feat these ARE the raw "
                "weights (scalegmn.weightspace.graph.from_graph_features)", per_edge)
        _create(root, "node_offsets", node_off, "start of each network in node_feat (N+1)")
        _create(root, "edge_offsets", edge_off, "start of each network in edge_feat (N+1)")
        _create(root, "arch_id", np.asarray(arch_ids, dtype=np.int32), "architecture of each network (arch/<id>)")
        _create(root, "y", content.y, "class label (int64) or regression target (float32)")
        _create(root, "activation", content.activation, "hidden activation of each network")
        odd = np.isin(content.activation.astype(str), ("sine", "tanh"))
        _create(root, "sign_mask", odd, "True where the hidden activation is odd (sign symmetry)")
        _create(root, "source", content.source, "where each network came from (file or weights.npy#row)")
        _create(root, "table_row", np.asarray(content.table_row, dtype=np.int64),
                "row in the dataset's weight table (canonical.h5); -1 never")
        if content.images is not None:
            _create(root, "images", content.images.astype(np.uint8),
                    "original 28x28 uint8 image each INR was fit to (INR editing)")
        arch = root.create_group("arch", attributes={"description": "topology per architecture"})
        for a, key in enumerate(specs):
            spec = NetworkSpec.from_dict(json.loads(key))
            topo = topology(spec)
            g = arch.create_group(str(a), attributes={"spec": json.loads(key),
                                                      "description": f"layout {list(spec.layout)}"})
            for name, t, desc in (
                ("edge_index", topo.edge_index, "(2, E) source, target node of each edge"),
                ("node_type", topo.node_type, "positional type of each node"),
                ("edge_type", topo.edge_type, "positional type of each edge"),
                ("node_layer", topo.node_layer, "layer of each node (0 = inputs)"),
            ):
                g.create_array(name, data=t.numpy(), attributes={"description": desc})
        root.attrs.update({
            "format": STORE_FORMAT,
            "format_version": STORE_VERSION,
            "n_networks": content.size,
            "n_architectures": len(specs),
            "input_node_value": 0.0,
            "package_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **attrs,
        })
    logger.info("wrote %d networks to %s in %.2f s", content.size, path, time.monotonic() - t0)
    return path


# ---------------------------------------------------------------------------------------------
# loading


@dataclass
class CachedSplit:
    """One split in memory, a :class:`scalegmn.data.split.Split`. Index it with :meth:`get` / :meth:`batches`.

    For one layout, ``spec`` is the architecture (for a mixed relu+tanh zoo the layout is
    shared: ``spec`` is the ReLU one and ``sign_mask`` says which are tanh). For mixed layouts
    ``spec`` raises; use :meth:`groups`.

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
        return int(self.y.shape[0])

    @property
    def spec(self) -> NetworkSpec:
        if len(self.specs) != 1:
            raise DataError(self.attrs.get("path", "store"),
                            f"holds {len(self.specs)} architectures; use .groups() for one CachedSplit each")
        return self.specs[0]

    def get(self, indices: torch.Tensor | np.ndarray | list[int]) -> WeightBatch:
        """The networks at ``indices`` (rows of this split) as a WeightBatch on this split's device."""
        spec = self.spec
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.y.device)
        net = Network(spec, tuple(w[idx] for w in self.weights[0]), tuple(b[idx] for b in self.biases[0]))
        return WeightBatch(
            net=net,
            y=self.y[idx],
            sign_mask=None if self.sign_mask is None else self.sign_mask[idx],
            index=idx,
        )

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


def _gather_rows(flat: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    return flat[starts[:, None] + np.arange(width)[None, :]] if len(starts) else np.zeros((0, width), flat.dtype)


def load_split(store_path: str | Path, device: str | torch.device = "cpu") -> CachedSplit:
    """Read a whole cached split into memory once (then onto ``device``)."""
    path = Path(store_path)
    t0 = time.monotonic()
    try:
        root = zarr.open_group(path, mode="r")
        attrs = dict(root.attrs)
        if attrs.get("format") != STORE_FORMAT:
            raise DataError(path, f"not a {STORE_FORMAT} store (format={attrs.get('format')!r})")
        node_feat = root["node_feat"][...]
        edge_feat = root["edge_feat"][...]
        node_off = root["node_offsets"][...]
        edge_off = root["edge_offsets"][...]
        arch_id = root["arch_id"][...]
        y = root["y"][...]
        activation = np.array([str(a) for a in root["activation"][...]], dtype=str)
        sources = [str(s) for s in root["source"][...]]
        images = root["images"][...] if "images" in root else None
        specs = [NetworkSpec.from_dict(dict(root["arch"][str(a)].attrs["spec"]))
                 for a in range(int(attrs["n_architectures"]))]
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as err:  # missing, incomplete or corrupt (checksums, JSON)
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise DataError(path, f"incomplete, corrupt or missing cache store ({reason}); delete it and "
                              "rebuild it with snakemake") from None
    weights, biases = [], []
    arch_pos = np.zeros(len(arch_id), dtype=np.int64)
    for a, spec in enumerate(specs):
        rows = np.flatnonzero(arch_id == a)
        arch_pos[rows] = np.arange(len(rows))
        d_e = edge_feature_dim(spec)
        nf = torch.from_numpy(_gather_rows(node_feat, node_off[rows], spec.n_nodes))
        ef = torch.from_numpy(_gather_rows(edge_feat, edge_off[rows], spec.n_edges * d_e))
        if rows.size:
            w, b = from_graph_features(spec, nf, ef.reshape(len(rows), spec.n_edges, d_e))
        else:  # an empty split (an activation filter can leave none): shapes only
            w = tuple(torch.zeros(0, *spec.weight_shape(i)) for i in range(spec.n_layers))
            b = tuple(torch.zeros(0, *spec.bias_shape(i)) for i in range(spec.n_layers))
        weights.append(tuple(t.contiguous().to(device) for t in w))
        biases.append(tuple(t.contiguous().to(device) for t in b))
    acts = sorted(set(activation.tolist()))
    sign_mask = None
    if len(acts) > 1:
        sign_mask = torch.from_numpy(np.isin(activation, ("sine", "tanh"))).to(device)
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
    mb = (node_feat.nbytes + edge_feat.nbytes) / 1e6
    dt = time.monotonic() - t0
    logger.info("loaded %d networks (%.1f MB) from %s in %.2f s", split.size, mb, path, dt)
    return split


# ---------------------------------------------------------------------------------------------
# building a view's split from the canonical table


def view_content(table, splits: dict, view: dict, split: str) -> tuple[StoreContent, dict]:
    """Select, filter and augment the networks of one split of a view.

    Args:
        table: the dataset's canonical :class:`~scalegmn.data.weight_table.WeightTable`.
        splits: the dataset's split JSON.
        view: ViewConfig fields (``activation``, ``aug_copies``, ``symmetry_copies``, ``seed``).
        split: train, val or test. Augmentation touches TRAIN only.
    """

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
    net = table.network(rows)
    acts = act[rows]
    if wanted in ("relu", "tanh"):
        net = net.replace(spec=net.spec.with_activation(wanted))
    labels = table.columns["label"][rows]
    if table.attrs.get("format") == "cnn_zoo":
        y = table.columns["target"][rows].astype(np.float32)  # test accuracy in [0, 1]
    else:
        y = labels.astype(np.int64)
    source = table.columns["source"][rows].astype(str)
    images = table.extras["images"][rows] if "images" in table.extras else None
    table_row = rows
    k = int(view.get("symmetry_copies") or 0)
    nets = [net]
    if split == "train" and k:
        if len(set(acts.tolist())) > 1:
            aug = symmetry_copies_mixed(net, acts, k, seed=int(view.get("seed", 0)))
        else:
            aug = symmetry_copies(net, k, seed=int(view.get("seed", 0)))
        nets = [Network(net.spec, tuple(torch.cat([a, b]) for a, b in zip(net.weights, aug.weights, strict=True)),
                        tuple(torch.cat([a, b]) for a, b in zip(net.biases, aug.biases, strict=True)))]
        y = np.concatenate([y] + [y] * k)
        acts = np.concatenate([acts] + [acts] * k)
        source = np.concatenate([source] + [np.char.add(source, f"#sym{c + 1}") for c in range(k)])
        images = None if images is None else np.concatenate([images] * (k + 1))
        table_row = np.concatenate([rows] * (k + 1))
        info["symmetry_rows"] = int(rows.size * k)
    content = StoreContent(nets=nets, y=y, activation=acts, source=source, table_row=table_row, images=images)
    return content, info


def build_cache(table_path: str | Path, splits_path: str | Path, out: str | Path, *,
                view: dict, split: str, provenance: dict[str, Any]) -> dict:
    """Build the store of one (view, split) from the canonical table; returns its attributes."""
    return build_view_stores(table_path, splits_path, {split: out}, view=view, provenance=provenance)[split]


def build_view_stores(table_path: str | Path, splits_path: str | Path, outs: dict[str, str | Path], *,
                      view: dict, provenance: dict[str, Any]) -> dict[str, dict]:
    """Build the stores of every split in ``outs`` (split -> path), reading the table once."""

    table, splits = read_table(table_path), read_splits(splits_path)
    return {split: _build_split(table, splits, out, view=view, split=split, provenance=provenance)
            for split, out in outs.items()}


def _build_split(table, splits: dict, out: str | Path, *, view: dict, split: str,
                 provenance: dict[str, Any]) -> dict:
    content, info = view_content(table, splits, view, split)
    labels = table.columns["label"]
    attrs = {
        **provenance,
        "view": view.get("name"),
        "dataset": view.get("dataset"),
        "split": split,
        "canonicalization": table.attrs.get("canonicalize", "none"),
        "augmentation": {"aug_copies": int(view.get("aug_copies") or 0) if split == "train" else 0,
                         "symmetry_copies": int(view.get("symmetry_copies") or 0) if split == "train" else 0,
                         "seed": int(view.get("seed", 0))},
        "activation_filter": view.get("activation"),
        "task_kind": "regression" if table.attrs.get("format") == "cnn_zoo" else "classification",
        "n_classes": None if table.attrs.get("format") == "cnn_zoo" else int(labels.max()) + 1,
        "counts": info,
    }
    write_store(out, content, attrs)
    return attrs
