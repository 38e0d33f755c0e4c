"""Batches streamed from a cache store when a split does not fit in memory (or on the GPU).

:class:`StreamedSplit` reads a store (:mod:`scalegmn.data.cache`) block by block, never whole:
a background thread reads the next blocks (``prefetch`` of them, each ``block_networks``
networks, whole zarr shards by default) while the caller trains on the current one. On CUDA the
blocks are read into pinned host memory and copied with ``non_blocking=True``, so the copy of
block k+1 overlaps the steps on block k and the GPU does not wait on data. Shuffling is by
block (the block order, then the rows inside a block, both from the caller's generator): a
permutation of the whole split would read a shard per network.

Peak host memory: about ``(prefetch + 2) x block_networks`` networks, whatever the split's size.
:func:`open_split` picks resident (:func:`~scalegmn.data.cache.load_split`) when the split fits a
memory budget, streamed otherwise.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import zarr

from scalegmn.data.cache import SHARD_NETWORKS, STORE_FORMAT, STORE_VERSION, CachedSplit, load_split
from scalegmn.errors import DataError
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import Network, NetworkSpec


def _open(path: Path) -> zarr.Group:
    try:
        root = zarr.open_group(path, mode="r")
    except (OSError, KeyError, ValueError) as err:
        raise DataError(path, f"cannot open the cache store ({type(err).__name__}); rebuild it with snakemake") from None
    attrs = dict(root.attrs)
    if attrs.get("format") != STORE_FORMAT or attrs.get("format_version") != STORE_VERSION:
        raise DataError(path, f"not a {STORE_FORMAT} store of version {STORE_VERSION}; rebuild it with snakemake")
    return root


def store_bytes(store_path: str | Path) -> int:
    """Bytes of the weights and biases of a store (what :func:`load_split` holds in memory)."""
    root = _open(Path(store_path))
    if root.attrs.get("layout") == "flat":  # many architectures: all parameters in one array
        return int(np.prod(root["params"].shape)) * root["params"].dtype.itemsize
    total = 0
    for a in range(int(root.attrs["n_architectures"])):
        group = root["arch"][str(a)]
        spec = NetworkSpec.from_dict(dict(group.attrs["spec"]))
        for layer in range(spec.n_layers):
            for name in (f"weight_{layer}", f"bias_{layer}"):
                arr = group[name]
                total += int(np.prod(arr.shape)) * arr.dtype.itemsize
    return total


class StreamedSplit:
    """One architecture's cached split, read block by block (see the module docstring).

    Satisfies :class:`scalegmn.data.split_protocol.Split` (``get`` reads the blocks holding the
    rows asked for: fine in order, slow at random); :meth:`batches` is the fast path.
    """

    def __init__(self, store_path: str | Path, *, device: str | torch.device = "cpu",
                 block_networks: int = SHARD_NETWORKS, prefetch: int = 2) -> None:
        self.path = Path(store_path)
        root = _open(self.path)
        if root.attrs.get("layout") == "flat":
            raise DataError(self.path, "a store of many architectures (flat layout) is not streamed: load it "
                                       "with load_split (raise execution.resident_max_mb)")
        if int(root.attrs["n_architectures"]) != 1:
            raise DataError(self.path, "streams one architecture per store; this one holds "
                                       f"{root.attrs['n_architectures']}: load it with load_split")
        group = root["arch"]["0"]
        self._spec = NetworkSpec.from_dict(dict(group.attrs["spec"]))
        self._weights = [group[f"weight_{i}"] for i in range(self._spec.n_layers)]
        self._biases = [group[f"bias_{i}"] for i in range(self._spec.n_layers)]
        rows = group["rows"]
        if rows.shape[0] and not np.array_equal(rows[: min(16, rows.shape[0])], np.arange(min(16, rows.shape[0]))):
            raise DataError(self.path, "the store's rows are not in network order; load it with load_split")
        self._y = root["y"]
        y = self._y[...]  # 8 bytes a network: held, as the labels are needed whole (n_classes, metrics)
        self.task_kind = "classification" if y.dtype.kind in "iu" else "regression"
        self.y = torch.from_numpy(y.astype(np.int64) if self.task_kind == "classification" else y.astype(np.float32))
        self._source = root["source"]
        mask = root["sign_mask"]
        odd = int(mask[...].sum()) if mask.shape[0] else 0  # bools: 1 byte a network, read once
        self._mask = mask if 0 < odd < mask.shape[0] else None  # None: one activation
        self.attrs = {**dict(root.attrs), "path": str(self.path)}
        self.device = torch.device(device)
        self.block_networks = int(block_networks)
        self.prefetch = max(1, int(prefetch))
        self.n_classes = self.attrs.get("n_classes") if self.task_kind == "classification" else None
        # MNIST editing's original images (784 bytes a network as stored): held whole, as load_split
        # holds them, since a batch's targets are looked up by row.
        self.images = None
        if "images" in root:
            images = torch.from_numpy(root["images"][...])
            self.images = images.float().div_(255.0).unsqueeze(1).to(self.device)

    @property
    def sources(self) -> list[str]:
        """Per-network source ids (read from the store when asked for)."""
        return [str(s) for s in self._source[...]]

    def layer_rms(self) -> tuple[list[float], list[float]]:
        """Each layer's RMS over the split (weights, then biases), read block by block: what
        :meth:`scalegmn.nn.input_scale.LayerScale.calibrate` computes from a resident split."""
        arrays = [*self._weights, *self._biases]
        sums, counts = [0.0] * len(arrays), [0] * len(arrays)
        for lo in range(0, self.size, self.block_networks):
            hi = min(lo + self.block_networks, self.size)
            for i, a in enumerate(arrays):
                block = np.asarray(a[lo:hi], dtype=np.float64)
                sums[i] += float(np.square(block).sum())
                counts[i] += block.size
        rms = [math.sqrt(t / c) if c and t > 0 else 1.0 for t, c in zip(sums, counts, strict=True)]
        n = self._spec.n_layers
        return rms[:n], rms[n:]

    @property
    def size(self) -> int:
        """Number of networks N."""
        return int(self._y.shape[0])

    @property
    def spec(self) -> NetworkSpec:
        """The layout every network of the split has."""
        return self._spec

    def _read(self, lo: int, hi: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Rows ``lo:hi`` as host tensors (pinned on CUDA): per-layer weights and biases, then y."""
        pin = self.device.type == "cuda"
        arrays = [*self._weights, *self._biases, *([] if self._mask is None else [self._mask]), self._y]
        out = [torch.from_numpy(np.ascontiguousarray(a[lo:hi])) for a in arrays]
        if pin:
            out = [t.pin_memory() for t in out]
        return out[:-1], out[-1]

    def _batch(self, tensors: list[torch.Tensor], y: torch.Tensor, rows: torch.Tensor, sel) -> WeightBatch:
        n = self._spec.n_layers
        net = Network(self._spec, tuple(t[sel] for t in tensors[:n]), tuple(t[sel] for t in tensors[n:2 * n]))
        y = y[sel]
        mask = tensors[2 * n][sel] if self._mask is not None else None
        return WeightBatch(net=net, y=y.long() if not y.is_floating_point() else y.float(),
                           sign_mask=mask, index=rows[sel])

    def get(self, indices: torch.Tensor | np.ndarray | list[int]) -> WeightBatch:
        """The networks at ``indices``: reads the span they cover (contiguous indices are cheap)."""
        idx = torch.as_tensor(indices, dtype=torch.long).cpu()
        if idx.numel() == 0:
            raise ValueError("no rows asked for")
        lo, hi = int(idx.min()), int(idx.max()) + 1
        tensors, y = self._read(lo, hi)
        tensors = [t.to(self.device, non_blocking=True) for t in tensors]
        y = y.to(self.device, non_blocking=True)
        local = (idx - lo).to(self.device)
        return self._batch(tensors, y, torch.arange(lo, hi, device=self.device), local)

    def _reader(self, blocks: list[tuple[int, int]], out: queue.Queue, stop: threading.Event) -> None:
        try:
            for lo, hi in blocks:
                if stop.is_set():
                    return
                out.put((lo, hi, *self._read(lo, hi)))
            out.put(None)
        except BaseException as err:  # surfaced in the consumer's thread
            out.put(err)

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[WeightBatch]:
        """Mini-batches over the whole split, read ahead by a background thread (see the module
        docstring); with ``shuffle``, block order and rows within blocks are shuffled."""
        bounds = [(lo, min(lo + self.block_networks, self.size)) for lo in range(0, self.size, self.block_networks)]
        if shuffle:
            bounds = [bounds[i] for i in torch.randperm(len(bounds), generator=generator).tolist()]
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        thread = threading.Thread(target=self._reader, args=(bounds, q, stop), daemon=True)
        thread.start()
        carry: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor] | None = None
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    break
                lo, hi, tensors, y = item
                tensors = [t.to(self.device, non_blocking=True) for t in tensors]
                y = y.to(self.device, non_blocking=True)
                rows = torch.arange(lo, hi, device=self.device)
                if shuffle:
                    order = torch.randperm(hi - lo, generator=generator)
                    if self.device.type == "cuda":  # pinned: the copy does not make the host wait
                        order = order.pin_memory()
                    order = order.to(self.device, non_blocking=True)
                    tensors, y, rows = [t[order] for t in tensors], y[order], rows[order]
                if carry is not None:  # the last block's remainder first: every batch is full
                    tensors = [torch.cat([c, t]) for c, t in zip(carry[0], tensors, strict=True)]
                    y, rows = torch.cat([carry[1], y]), torch.cat([carry[2], rows])
                    carry = None
                n = y.shape[0]
                full = n - n % batch_size
                for start in range(0, full, batch_size):
                    yield self._batch(tensors, y, rows, slice(start, start + batch_size))
                if full < n:
                    carry = ([t[full:] for t in tensors], y[full:], rows[full:])
            if carry is not None and not drop_last:
                yield self._batch(carry[0], carry[1], carry[2], slice(0, None))
        finally:
            stop.set()
            while thread.is_alive():  # unblock a reader waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)


def in_order(split, batch_size: int) -> Iterator[WeightBatch]:
    """The split's networks in row order, ``batch_size`` at a time (the last batch may be
    smaller): a :class:`StreamedSplit` through its background reader, any other
    :class:`~scalegmn.data.split_protocol.Split` by ``get`` of consecutive rows. Evaluation and
    embedding read splits this way."""
    if isinstance(split, StreamedSplit):
        yield from split.batches(batch_size, shuffle=False)
        return
    for start in range(0, split.size, batch_size):
        yield split.get(torch.arange(start, min(start + batch_size, split.size)))


def open_split(store_path: str | Path, *, device: str | torch.device = "cpu",
               max_resident_mb: float | None = None) -> CachedSplit | StreamedSplit:
    """The split resident (:func:`load_split`) when its weights fit ``max_resident_mb`` (None:
    always), else a :class:`StreamedSplit` on ``device``."""
    if max_resident_mb is None or store_bytes(store_path) / 2**20 <= max_resident_mb:
        return load_split(store_path, device=device)
    return StreamedSplit(store_path, device=device)
