"""One HDF5 file per dataset holding every network of one architecture: the ingested network set.

Layout of ``weights.h5`` (and ``canonical.h5``, same layout):

- ``/weights/<l>``: ``(N, out, in[, kh, kw])`` float32, PyTorch order, chunked by 64 networks;
- ``/biases/<l>``: ``(N, out)`` float32;
- ``/columns/<name>``: one value per network: ``label`` (int64, -1 when none), ``target``
  (float32, NaN when none), ``source`` (file path or ``weights.npy#row``), ``activation``
  (hidden activation, per network: the Small CNN Zoo mixes relu and tanh), and the split
  hints of the format (``split``, ``image_id``, ``idx``, ``aug``, ``relpath``, ``zoo_row``);
- ``/extras/<name>``: dataset-level arrays (the NFN split permutation, source images);
- attributes: ``spec`` (architecture JSON; for a zoo that mixes activations it is the ReLU
  spec and ``columns/activation`` says which networks are tanh), ``dataset``, ``format``, and
  anything else a stage records (``canonicalize``...).

A zoo of many architectures (CNN Wild Park: about one architecture per training run, thousands
in all) has the *flat* layout instead (attribute ``layout = "flat"``), since an HDF5 group per
architecture would mean tens of thousands of datasets:

- ``/flat/params``: ``(P,)`` float32, every network's parameters in layer order, weight then
  bias (:meth:`~scalegmn.weightspace.network.Network.flat`), networks one after the other;
- ``/columns/arch`` (int32, index into the ``specs`` attribute) and ``/columns/offset`` (int64,
  where the network starts in ``params``), besides the usual columns;
- attribute ``specs``: the JSON list of the architectures' spec dicts.

:class:`FlatNetworkSetWriter` writes it, :func:`read_flat_network_set` reads it, and
:func:`gather_networks` turns rows of one architecture into a stacked Network with one indexing.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch

from scalegmn.atomic import atomic_write
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, NetworkSpec

# torch (via scalegmn.weightspace.network) is imported where tensors are made: the splits stage reads
# columns only and need not pay for it.
if TYPE_CHECKING:
    import torch

    from scalegmn.weightspace.network import Network, NetworkSpec

_STR = h5py.string_dtype()


@dataclass
class NetworkSet:
    """N networks of one layout, as numpy arrays.

    Attributes:
        spec: the architecture (hidden activation of the first network when they differ);
            None when read with ``arrays=False``.
        weights, biases: per layer, ``(N, ...)`` float32 (empty with ``arrays=False``).
        columns: per-network arrays (``label``, ``target``, ``source``, ``activation`` + hints).
        extras: dataset-level arrays.
        attrs: JSON-serialisable provenance.
    """

    spec: NetworkSpec | None
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    columns: dict[str, np.ndarray]
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of networks N."""
        return int(self.biases[0].shape[0] if self.biases else self.columns["source"].shape[0])

    def network(self, rows: np.ndarray | None = None, dtype: torch.dtype | None = None) -> Network:
        """The networks (all, or ``rows``) as one batched :class:`Network` (torch tensors, float32
        unless ``dtype``)."""
        dtype = dtype or torch.float32
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])
        return Network(
            self.spec,
            tuple(torch.as_tensor(np.ascontiguousarray(pick(w))).to(dtype) for w in self.weights),
            tuple(torch.as_tensor(np.ascontiguousarray(pick(b))).to(dtype) for b in self.biases),
        )

    def with_network(self, net: Network) -> NetworkSet:
        """A copy holding the weights and biases of ``net`` (same rows, same columns)."""
        return replace(
            self,
            weights=[w.detach().cpu().to(torch.float32).numpy() for w in net.weights],
            biases=[b.detach().cpu().to(torch.float32).numpy() for b in net.biases],
        )

    def select(self, rows: np.ndarray) -> NetworkSet:
        """The networks at ``rows`` (weights, biases, columns); spec, extras and attrs kept."""
        return replace(
            self,
            weights=[w[rows] for w in self.weights],
            biases=[b[rows] for b in self.biases],
            columns={k: v[rows] for k, v in self.columns.items()},
        )


def _write_array(group: h5py.Group, name: str, data: np.ndarray) -> None:
    if data.dtype.kind in ("U", "O", "T"):
        group.create_dataset(name, data=np.asarray(data, dtype=object), dtype=_STR)
        return
    chunks = None
    if data.ndim >= 1 and data.shape[0] > 0:
        chunks = (min(64, data.shape[0]), *data.shape[1:])
    group.create_dataset(name, data=data, chunks=chunks)


class NetworkSetWriter:
    """Write a weight table block by block (resizable datasets), then rename it into place.

    Usage::

        with NetworkSetWriter(path, spec) as w:
            w.append(weights, biases, columns)   # any number of blocks
            w.finish(extras, attrs)
    """

    def __init__(self, path: str | Path, spec: NetworkSpec):
        self.path = Path(path)
        self._target = ExitStack()  # the atomic write, completed by finish() only
        self.tmp = self._target.enter_context(atomic_write(self.path))
        self._finished = False
        self.spec = spec
        self.n = 0
        self.file = h5py.File(self.tmp, "w")
        self.file.attrs["spec"] = spec.key()
        for name, shapes in (("weights", [spec.weight_shape(i) for i in range(spec.n_layers)]),
                             ("biases", [spec.bias_shape(i) for i in range(spec.n_layers)])):
            g = self.file.create_group(name)
            for i, shape in enumerate(shapes):
                g.create_dataset(str(i), shape=(0, *shape), maxshape=(None, *shape), dtype="float32",
                                 chunks=(64, *shape))
        self.file.create_group("columns")
        self.file.create_group("extras")

    def __enter__(self) -> NetworkSetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.file.id.valid:
            self.file.close()
        if not self._finished:  # an error, or no finish(): the temporary file goes, path stays as it was
            abandoned = exc if exc is not None else RuntimeError("NetworkSetWriter closed before finish()")
            self._target.__exit__(type(abandoned), abandoned, tb)

    def append(self, weights, biases, columns: dict[str, np.ndarray]) -> None:
        """Append a block of networks (numpy or torch, ``(n, ...)``) and their column values."""
        n = int(np.asarray(biases[0]).shape[0])
        lo, hi = self.n, self.n + n
        for name, arrays in (("weights", weights), ("biases", biases)):
            for i, a in enumerate(arrays):
                a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)  # torch or numpy
                ds = self.file[name][str(i)]
                ds.resize(hi, axis=0)
                ds[lo:hi] = a.astype(np.float32, copy=False)
        _append_columns(self.file["columns"], columns, lo, hi)
        self.n = hi

    def finish(self, extras: dict[str, np.ndarray] | None = None, attrs: dict[str, Any] | None = None) -> Path:
        """Write ``extras`` and ``attrs``, close, rename into place; returns the final path."""
        for k, v in (extras or {}).items():
            _write_array(self.file["extras"], k, np.asarray(v))
        self.file.attrs["n_networks"] = self.n
        for k, v in (attrs or {}).items():
            self.file.attrs[k] = json.dumps(v, sort_keys=True)
        self.file.close()
        self._finished = True
        self._target.close()
        return self.path


def _append_columns(cols: h5py.Group, columns: dict[str, np.ndarray], lo: int, hi: int) -> None:
    """Append rows ``lo:hi`` of every column (created, resizable, on first use)."""
    for k, v in columns.items():
        v = np.asarray(v)
        if k not in cols:
            if v.dtype.kind in ("U", "O", "T"):
                cols.create_dataset(k, shape=(0,), maxshape=(None,), dtype=_STR, chunks=(4096,))
            else:
                cols.create_dataset(k, shape=(0, *v.shape[1:]), maxshape=(None, *v.shape[1:]),
                                    dtype=v.dtype, chunks=(4096, *v.shape[1:]))
        ds = cols[k]
        ds.resize(hi, axis=0)
        ds[lo:hi] = v.astype(object) if v.dtype.kind in ("U", "T") else v


def write_network_set(path: str | Path, table: NetworkSet) -> Path:
    """Write ``table`` to ``path`` atomically (temporary name in the same folder, then rename)."""
    with NetworkSetWriter(path, table.spec) as w:
        w.append(table.weights, table.biases, table.columns)
        return w.finish(table.extras, table.attrs)


def _read_array(ds: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        return ds.asstr()[()].astype(str) if ds.shape else np.asarray(ds.asstr()[()])
    return ds[()]


def _unreadable(path: Path, err: Exception) -> DataError:
    reason = " ".join(str(err).split()) or type(err).__name__
    return DataError(path, f"not a readable weight table ({reason}); delete it and rerun the stage that wrote it")


def read_network_set(path: str | Path, *, arrays: bool = True) -> NetworkSet:
    """Read a whole table into memory. DataError naming the file if it is not one.

    With ``arrays=False`` only columns, extras and attributes are read (no spec, no weights,
    no torch import): what the splits stage needs.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            spec, weights, biases = None, [], []
            if arrays:
                spec = _spec(f)
                weights = [f["weights"][str(i)][()] for i in range(spec.n_layers)]
                biases = [f["biases"][str(i)][()] for i in range(spec.n_layers)]
            columns = {k: _read_array(v) for k, v in f["columns"].items()}
            extras = {k: _read_array(v) for k, v in f["extras"].items()}
            attrs = {k: json.loads(v) for k, v in f.attrs.items() if k not in ("spec", "specs", "n_networks")}
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise _unreadable(path, err) from None
    return NetworkSet(spec, weights, biases, columns, extras, attrs)


def _spec(f: h5py.File) -> NetworkSpec:
    if "spec" not in f.attrs and "specs" in f.attrs:
        raise DataError(f.filename, "holds networks of several architectures (flat layout); read it with "
                                    "read_flat_network_set")
    return NetworkSpec.from_dict(json.loads(f.attrs["spec"]))


def network_set_spec(path: str | Path) -> NetworkSpec:
    """The architecture of a table without reading its arrays (DataError naming an unreadable file)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return _spec(f)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise _unreadable(path, err) from None


# ---------------------------------------------------------------------------------------------
# the flat layout: networks of many architectures


def is_flat_table(path: str | Path) -> bool:
    """Whether a weight table has the flat (many architectures) layout (DataError if unreadable)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return "specs" in f.attrs and "spec" not in f.attrs
    except OSError as err:
        raise _unreadable(path, err) from None


def layer_sizes(spec: NetworkSpec) -> list[int]:
    """Number of values of each tensor in flat order: weight 0, bias 0, weight 1, ..."""
    out = []
    for i in range(spec.n_layers):
        out += [int(np.prod(spec.weight_shape(i))), int(np.prod(spec.bias_shape(i)))]
    return out


def gather_networks(params: torch.Tensor, offsets: torch.Tensor, spec: NetworkSpec) -> Network:
    """The networks of one architecture starting at ``offsets`` in the flat ``params``, stacked:
    one gather for the whole group (no loop over networks)."""
    n_params = spec.num_params
    index = offsets.to(torch.long).unsqueeze(1) + torch.arange(n_params, device=params.device)
    rows = params[index]  # (n, num_params)
    parts = torch.split(rows, layer_sizes(spec), dim=1)
    n = rows.shape[0]
    weights = tuple(parts[2 * i].reshape(n, *spec.weight_shape(i)) for i in range(spec.n_layers))
    biases = tuple(parts[2 * i + 1].reshape(n, *spec.bias_shape(i)) for i in range(spec.n_layers))
    return Network(spec, weights, biases)


@dataclass
class FlatNetworkSet:
    """N networks of several architectures: flat parameters plus columns.

    Attributes:
        specs: the architectures; ``columns["arch"]`` indexes them.
        params: ``(P,)`` float32, every network's parameters (empty with ``arrays=False``).
        columns: per-network arrays (``arch``, ``offset``, ``label``, ``target``, ``source`` + hints).
        extras, attrs: as :class:`NetworkSet`.
    """

    specs: list[NetworkSpec]
    params: np.ndarray
    columns: dict[str, np.ndarray]
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of networks N."""
        return int(self.columns["arch"].shape[0])

    def groups(self, rows: np.ndarray) -> list[tuple[np.ndarray, Network]]:
        """``(rows of that architecture, their stacked Network)`` per architecture present in ``rows``
        (first appearance order; rows keep their order inside a group)."""
        rows = np.asarray(rows, dtype=np.int64)
        arch = self.columns["arch"][rows]
        params = torch.from_numpy(self.params)
        out = []
        for a in dict.fromkeys(arch.tolist()):
            r = rows[arch == a]
            out.append((r, gather_networks(params, torch.from_numpy(self.columns["offset"][r]), self.specs[a])))
        return out


class FlatNetworkSetWriter:
    """Write a flat-layout table block by block, then rename it into place (as :class:`NetworkSetWriter`).

    Usage::

        with FlatNetworkSetWriter(path) as w:
            w.append(networks, columns)   # single networks of any architectures
            w.finish(extras, attrs)
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._target = ExitStack()
        self.tmp = self._target.enter_context(atomic_write(self.path))
        self._finished = False
        self.specs: list[NetworkSpec] = []
        self._index: dict[str, int] = {}
        self.n = 0
        self.n_values = 0
        self.file = h5py.File(self.tmp, "w")
        self.file.create_group("flat").create_dataset("params", shape=(0,), maxshape=(None,), dtype="float32",
                                                      chunks=(1 << 16,))
        self.file.create_group("columns")
        self.file.create_group("extras")

    __enter__ = NetworkSetWriter.__enter__
    __exit__ = NetworkSetWriter.__exit__

    def append(self, networks: list[Network], columns: dict[str, np.ndarray]) -> None:
        """Append single networks (any architectures) and their column values."""
        arch, offset, flats = [], [], []
        pos = self.n_values
        for net in networks:
            key = net.spec.key()
            if key not in self._index:
                self._index[key] = len(self.specs)
                self.specs.append(net.spec)
            flat = net.flat().detach().to("cpu", torch.float32).numpy()
            arch.append(self._index[key])
            offset.append(pos)
            flats.append(flat)
            pos += flat.size
        ds = self.file["flat"]["params"]
        ds.resize(pos, axis=0)
        if flats:
            ds[self.n_values:pos] = np.concatenate(flats)
        self.n_values = pos
        cols = {**columns, "arch": np.asarray(arch, dtype=np.int32), "offset": np.asarray(offset, dtype=np.int64)}
        _append_columns(self.file["columns"], cols, self.n, self.n + len(networks))
        self.n += len(networks)

    def finish(self, extras: dict[str, np.ndarray] | None = None, attrs: dict[str, Any] | None = None) -> Path:
        """Write ``extras``, ``attrs`` and the architectures, close, rename into place."""
        self.file.attrs["specs"] = json.dumps([s.to_dict() for s in self.specs], sort_keys=True)
        self.file.attrs["layout"] = json.dumps("flat")
        return NetworkSetWriter.finish(self, extras, attrs)


def read_flat_network_set(path: str | Path, *, arrays: bool = True) -> FlatNetworkSet:
    """Read a flat-layout table (DataError naming the file if it is not one)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "specs" not in f.attrs:
                raise DataError(path, "not a flat (several architectures) weight table; read it with read_network_set")
            specs = [NetworkSpec.from_dict(d) for d in json.loads(f.attrs["specs"])]
            params = f["flat"]["params"][()] if arrays else np.zeros(0, np.float32)
            columns = {k: _read_array(v) for k, v in f["columns"].items()}
            extras = {k: _read_array(v) for k, v in f["extras"].items()}
            attrs = {k: json.loads(v) for k, v in f.attrs.items() if k not in ("specs", "n_networks")}
    except DataError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise _unreadable(path, err) from None
    return FlatNetworkSet(specs, params, columns, extras, attrs)
