"""The Small CNN Zoo (Unterthiner et al. 2020; docs/datasets.md §4): CIFAR10-GS and SVHN-GS.

A zoo root holds ``weights.npy`` (N x 4970 float32, one flattened TF checkpoint per row),
``layout.csv`` (where each TF variable sits in a row) and ``metrics.csv.gz`` (one row per
weights row: ``step``, ``test_accuracy``, ``config.activation``, ...). NFN's split CSVs hold a
permutation of the rows preceded by a stray ``0`` header line, which loaders keep (N+1 entries).

TF stores conv kernels HWIO and dense kernels (in, out); a :class:`Network` holds PyTorch's
OIHW and (out, in). TF and PyTorch both compute cross-correlations, so no kernel flip is needed.
"""

from __future__ import annotations

import ast
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from scalegmn.atomic import atomic_write
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, cnn_zoo_spec

if TYPE_CHECKING:  # pandas is imported where a table is read (0.5 s): training jobs never need it
    import pandas as pd

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.npy"
LAYOUT_FILE = "layout.csv"
METRICS_FILE = "metrics.csv.gz"
LAYOUT_COLUMNS = ("varname", "start_idx", "end_idx", "shape")
REQUIRED_METRICS = ("step", "test_accuracy", "config.activation")
FINAL_STEP = 86


class LayoutRow(NamedTuple):
    """One row of ``layout.csv``: a TF variable's slice ``[start_idx, end_idx)`` of a weights row and its shape."""
    varname: str
    start_idx: int
    end_idx: int
    shape: tuple[int, ...]


# Sorted TF-variable order: bias before kernel within each layer (Unterthiner's colab).
LAYOUT: tuple[LayoutRow, ...] = (
    LayoutRow("sequential/conv2d/bias:0", 0, 16, (16,)),
    LayoutRow("sequential/conv2d/kernel:0", 16, 160, (3, 3, 1, 16)),
    LayoutRow("sequential/conv2d_1/bias:0", 160, 176, (16,)),
    LayoutRow("sequential/conv2d_1/kernel:0", 176, 2480, (3, 3, 16, 16)),
    LayoutRow("sequential/conv2d_2/bias:0", 2480, 2496, (16,)),
    LayoutRow("sequential/conv2d_2/kernel:0", 2496, 4800, (3, 3, 16, 16)),
    LayoutRow("sequential/dense/bias:0", 4800, 4810, (10,)),
    LayoutRow("sequential/dense/kernel:0", 4810, 4970, (16, 10)),
)
N_PARAMS = LAYOUT[-1].end_idx  # 4970


def layout_frame() -> pd.DataFrame:
    """:data:`LAYOUT` as the DataFrame that ``layout.csv`` holds (shape as ``"(3, 3, 1, 16)"``)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "varname": [r.varname for r in LAYOUT],
            "start_idx": [r.start_idx for r in LAYOUT],
            "end_idx": [r.end_idx for r in LAYOUT],
            "shape": [str(tuple(r.shape)) for r in LAYOUT],
        }
    )


def _parse_shape(value: object) -> tuple[int, ...]:
    """A layout ``shape`` cell: a tuple, or its string form ``"(3, 3, 1, 16)"`` / ``"(16,)"``."""
    if isinstance(value, str):
        value = ast.literal_eval(value)  # literal_eval, never eval: the file is untrusted
    if isinstance(value, int):
        value = (value,)
    shape = tuple(int(v) for v in value)  # type: ignore[union-attr]
    if not shape or any(v < 1 for v in shape):
        raise ValueError(f"bad shape {value!r}")
    return shape


def _layout_rows(layout_df: pd.DataFrame, where: str | Path) -> list[LayoutRow]:
    missing = [c for c in LAYOUT_COLUMNS if c not in layout_df.columns]
    if missing:
        raise DataError(where, f"missing column '{missing[0]}' (needs {list(LAYOUT_COLUMNS)})")
    rows = []
    for i, rec in enumerate(layout_df.itertuples(index=False)):
        rec = rec._asdict()
        try:
            shape = _parse_shape(rec["shape"])
            start, end = int(rec["start_idx"]), int(rec["end_idx"])
        except (ValueError, SyntaxError, TypeError):
            raise DataError(where, f"row {i}: unreadable start_idx/end_idx/shape {rec}") from None
        if end - start != math.prod(shape) or start < 0:
            raise DataError(
                where,
                f"row {i} ({rec['varname']}): [{start}, {end}) holds {end - start} values "
                f"but shape {shape} needs {math.prod(shape)}",
            )
        varname = str(rec["varname"])
        if not (varname.endswith("kernel:0") or varname.endswith("bias:0")):
            raise DataError(where, f"row {i}: varname '{varname}' is neither a kernel nor a bias")
        rows.append(LayoutRow(varname, start, end, shape))
    return rows


def read_layout(root: str | Path) -> pd.DataFrame:
    """``root/layout.csv`` with ``shape`` parsed to tuples; checked against the zoo architecture."""
    import pandas as pd

    path = Path(root) / LAYOUT_FILE
    if not path.is_file():
        raise DataError(path, "file not found; every Small CNN Zoo root holds layout.csv")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"not a readable CSV ({str(err).splitlines()[0]})") from None
    rows = _layout_rows(df, path)
    _kernels_and_biases(rows, path)  # the layout must describe exactly the zoo CNN
    df = df.copy()
    df["shape"] = [r.shape for r in rows]
    return df


def _kernels_and_biases(
    rows: list[LayoutRow], where: str | Path
) -> tuple[list[LayoutRow], list[LayoutRow]]:
    """Split layout rows into kernels and biases (file order = layer order); check the shapes."""
    spec = cnn_zoo_spec("relu")
    kernels = [r for r in rows if r.varname.endswith("kernel:0")]
    biases = [r for r in rows if r.varname.endswith("bias:0")]
    if len(kernels) != spec.n_layers or len(biases) != spec.n_layers:
        raise DataError(
            where,
            f"expected {spec.n_layers} kernels and {spec.n_layers} biases, found "
            f"{len(kernels)} and {len(biases)}",
        )
    for layer, (k, b) in enumerate(zip(kernels, biases, strict=True)):
        w_shape = spec.weight_shape(layer)  # PyTorch (out, in, kh, kw) or (out, in)
        tf_shape = (*w_shape[2:], w_shape[1], w_shape[0]) if len(w_shape) == 4 else w_shape[::-1]
        if k.shape != tf_shape or b.shape != spec.bias_shape(layer):
            raise DataError(
                where,
                f"layer {layer}: {k.varname} {k.shape} / {b.varname} {b.shape} do not match "
                f"the zoo CNN (expected {tf_shape} / {spec.bias_shape(layer)})",
            )
    return kernels, biases


def read_metrics(root: str | Path) -> pd.DataFrame:
    """``root/metrics.csv.gz`` (gzip CSV, one row per weights row); checks the needed columns."""
    import pandas as pd

    path = Path(root) / METRICS_FILE
    if not path.is_file():
        raise DataError(path, "file not found; every Small CNN Zoo root holds metrics.csv.gz")
    try:
        df = pd.read_csv(path, compression="gzip")
    except (OSError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(path, f"not a readable gzip CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_METRICS if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column '{missing[0]}' (needs {list(REQUIRED_METRICS)})")
    return df


def _count_metrics_rows(root: Path) -> int:
    import pandas as pd

    path = root / METRICS_FILE
    try:
        return len(pd.read_csv(path, compression="gzip", usecols=["step"]))
    except (OSError, EOFError, ValueError, pd.errors.ParserError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(path, f"not a readable gzip CSV with a 'step' column ({reason})") from None


def open_weights(
    root: str | Path, *, layout: pd.DataFrame | None = None, metrics: pd.DataFrame | None = None
) -> np.ndarray:
    """Memory-map ``root/weights.npy`` read-only: ``(N, 4970)`` float32.

    ``layout`` / ``metrics``: the zoo's already read :func:`read_layout` / :func:`read_metrics`
    (a caller that needs them anyway saves reading the files twice).

    Raises:
        DataError: the file is unreadable, not 2-D float32, its width disagrees with
            ``layout.csv``'s last ``end_idx``, or its row count with ``metrics.csv.gz``.
    """
    root = Path(root)
    path = root / WEIGHTS_FILE
    if not path.is_file():
        raise DataError(path, "file not found; every Small CNN Zoo root holds weights.npy")
    try:
        weights = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(
            path, f"not a readable .npy file (truncated or corrupt?): {str(err).splitlines()[0]}"
        ) from None
    if weights.ndim != 2:
        raise DataError(
            path, f"expected a 2-D array (networks x parameters), got shape {weights.shape}"
        )
    if weights.dtype != np.float32:
        raise DataError(path, f"dtype is {weights.dtype}, expected float32")
    width = int((read_layout(root) if layout is None else layout)["end_idx"].max())
    if weights.shape[1] != width:
        raise DataError(
            path,
            f"rows have {weights.shape[1]} values but {LAYOUT_FILE} describes {width}; "
            "the two files come from different zoos",
        )
    n_metrics = _count_metrics_rows(root) if metrics is None else len(metrics)
    if weights.shape[0] != n_metrics:
        raise DataError(
            path,
            f"{weights.shape[0]} rows but {METRICS_FILE} has {n_metrics}; "
            "the two files come from different zoos or one is truncated",
        )
    return weights


class WeightRows:
    """Rows of a checked ``weights.npy`` (:func:`open_weights`) read from the file on request,
    never memory-mapped: pages of a memory map that were read stay in the process's resident
    set (a whole zoo's 5.4 GB in the peak RSS of an ingest), while rows read with ``readinto``
    take only the array they are read into. Runs of consecutive rows are read with one call.

    ``rows[i]`` (one row) and ``rows[idx]`` (an int array, any order) return float32 arrays;
    ``shape`` and ``dtype`` are the file's.
    """

    def __init__(self, path: Path, shape: tuple[int, int], dtype: np.dtype, offset: int) -> None:
        self.path, self.shape, self.dtype, self.offset = Path(path), shape, np.dtype(dtype), int(offset)

    def __len__(self) -> int:
        """Number of rows."""
        return self.shape[0]

    def __getitem__(self, rows: int | np.ndarray) -> np.ndarray:
        """The rows asked for (an int: one row; an array: one row each, in the given order)."""
        one = np.ndim(rows) == 0
        idx = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        idx = np.where(idx < 0, idx + self.shape[0], idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"rows out of range for {self.shape[0]} rows of {self.path}")
        order = np.argsort(idx, kind="stable")
        sorted_rows = idx[order]
        out = np.empty((idx.size, self.shape[1]), dtype=self.dtype)
        row_bytes = self.shape[1] * self.dtype.itemsize
        # runs of consecutive rows: (position in sorted_rows where a run starts, its length)
        breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
        starts = np.concatenate([[0], breaks]).astype(np.int64)
        ends = np.concatenate([breaks, [idx.size]]).astype(np.int64)
        in_order = bool((order == np.arange(idx.size)).all())
        buf = out if in_order else np.empty_like(out)  # rows asked for in file order: read in place
        with open(self.path, "rb") as f:
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                if a == b:
                    continue
                f.seek(self.offset + int(sorted_rows[a]) * row_bytes)
                view = memoryview(buf[a:b]).cast("B")
                if f.readinto(view) != (b - a) * row_bytes:
                    raise DataError(self.path, "shorter than its header says (truncated?)")
        if not in_order:
            out[order] = buf
        return out[0] if one else out


def open_weight_rows(
    root: str | Path, *, layout: pd.DataFrame | None = None, metrics: pd.DataFrame | None = None
) -> WeightRows | np.ndarray:
    """``root/weights.npy`` checked as :func:`open_weights` does, its rows read on request
    (:class:`WeightRows`: bounded memory, see there); a Fortran-ordered file (rows not
    contiguous on disk) keeps the memory map."""
    weights = open_weights(root, layout=layout, metrics=metrics)
    if not weights.flags.c_contiguous or not isinstance(weights, np.memmap):
        return weights
    return WeightRows(Path(root) / WEIGHTS_FILE, weights.shape, weights.dtype, weights.offset)


def rows_to_network(rows: np.ndarray, layout_df: pd.DataFrame, activation: str) -> Network:
    """Flat TF rows ``(B, 4970)`` or ``(4970,)`` -> a (batched) zoo CNN in PyTorch order.

    Each slice ``[start_idx, end_idx)`` is reshaped in C order to its TF shape; conv kernels
    go HWIO -> OIHW, dense kernels (in, out) -> (out, in). The n-th kernel / bias row of the
    layout (in file order) is layer n.
    """
    spec = cnn_zoo_spec(activation)
    layout = _layout_rows(layout_df, "layout")
    kernels, bias_rows = _kernels_and_biases(layout, "layout")
    rows = np.asarray(rows)
    width = max(r.end_idx for r in layout)
    if rows.ndim not in (1, 2) or rows.shape[-1] != width:
        raise ValueError(f"rows of shape {rows.shape}: expected (B, {width}) or ({width},)")
    flat = torch.from_numpy(np.array(rows, dtype=np.float32))  # a copy: mmaps are read-only
    batch = flat.shape[:-1]
    weights, biases = [], []
    for k, b in zip(kernels, bias_rows, strict=True):
        w = flat[..., k.start_idx : k.end_idx].reshape(*batch, *k.shape)
        nb = len(batch)
        if len(k.shape) == 4:  # (h, w, in, out) -> (out, in, h, w)
            w = w.permute(*range(nb), nb + 3, nb + 2, nb, nb + 1)
        else:  # (in, out) -> (out, in)
            w = w.transpose(-1, -2)
        weights.append(w.contiguous())
        biases.append(flat[..., b.start_idx : b.end_idx].reshape(*batch, *b.shape).contiguous())
    return Network(spec, tuple(weights), tuple(biases))


def network_to_rows(net: Network) -> np.ndarray:
    """Inverse of :func:`rows_to_network` under :data:`LAYOUT`: ``(*batch, 4970)`` float32."""
    spec = net.spec
    if (
        spec.layout != cnn_zoo_spec("relu").layout
        or spec.layer_kinds != cnn_zoo_spec("relu").layer_kinds
    ):
        raise ValueError(f"network_to_rows needs a Small CNN Zoo network, got layout {spec.layout}")
    batch = tuple(net.batch_shape)
    nb = len(batch)
    out = np.empty((*batch, N_PARAMS), dtype=np.float32)
    kernels = [r for r in LAYOUT if r.varname.endswith("kernel:0")]
    bias_rows = [r for r in LAYOUT if r.varname.endswith("bias:0")]
    for w, b, k, br in zip(net.weights, net.biases, kernels, bias_rows, strict=True):
        w = w.detach().to("cpu", torch.float32)
        if w.dim() - nb == 4:  # (out, in, h, w) -> (h, w, in, out)
            w = w.permute(*range(nb), nb + 2, nb + 3, nb + 1, nb)
        else:
            w = w.transpose(-1, -2)
        out[..., k.start_idx : k.end_idx] = w.reshape(*batch, -1).numpy()
        out[..., br.start_idx : br.end_idx] = (
            b.detach().to("cpu", torch.float32).reshape(*batch, -1).numpy()
        )
    return out


def write_zoo(root: str | Path, rows: np.ndarray, metrics: pd.DataFrame) -> None:
    """Write ``weights.npy``, ``layout.csv`` and ``metrics.csv.gz`` into ``root``, each atomically.

    ``metrics`` needs one row per weights row and at least ``step``, ``test_accuracy`` and
    ``config.activation``; every other column is kept as given.
    """
    root = Path(root)
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[1] != N_PARAMS:
        raise ValueError(f"rows of shape {rows.shape}: expected (N, {N_PARAMS})")
    if rows.dtype != np.float32:
        raise ValueError(f"rows have dtype {rows.dtype}; the zoo stores float32")
    missing = [c for c in REQUIRED_METRICS if c not in metrics.columns]
    if missing:
        raise ValueError(
            f"metrics is missing column {missing[0]!r} (needs {list(REQUIRED_METRICS)})"
        )
    if len(metrics) != len(rows):
        raise ValueError(f"{len(rows)} weight rows but {len(metrics)} metrics rows; need one each")
    with atomic_write(root / WEIGHTS_FILE) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(rows), allow_pickle=False)
    with atomic_write(root / LAYOUT_FILE) as tmp:
        layout_frame().to_csv(tmp, index=False)
    with atomic_write(root / METRICS_FILE) as tmp:
        # mtime=0: the same metrics give byte-identical files (reproducible stand-ins).
        metrics.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    logger.info("wrote a zoo of %d networks to %s", len(rows), root)


def read_split_csv(path: str | Path) -> np.ndarray:
    """An NFN split CSV as int64 indices, read with ``header=None`` semantics.

    The file's stray first line ``0`` (a pandas header written into it) is kept, giving N+1
    entries with 0 twice, exactly as every published number was computed.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found (the split CSV ships with NFN; see docs/datasets.md §4.5)")
    try:
        df = pd.read_csv(path, header=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"not a readable CSV ({str(err).splitlines()[0]})") from None
    if df.shape[1] != 1 or not pd.api.types.is_integer_dtype(df[0]):
        raise DataError(path, "expected one integer row index per line")
    values = df[0].to_numpy(dtype=np.int64)
    if (values < 0).any():
        raise DataError(path, f"negative row index {int(values.min())}")
    return values


def write_split_csv(path: str | Path, perm: np.ndarray) -> None:
    """Write NFN's split CSV: a line ``0`` (the quirk), then ``perm``, one index per line."""
    perm = np.asarray(perm)
    if perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(f"perm must be a 1-D integer array, got {perm.dtype} {perm.shape}")
    text = "0\n" + "".join(f"{int(i)}\n" for i in perm)
    with atomic_write(path) as tmp:
        tmp.write_text(text)
