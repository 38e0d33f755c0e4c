"""Table 5's figures: the test embeddings in 2-D, and INR retrieval examples.

Both read the embedding stores of one seed per (column, row) (``embeddings/test.zarr`` of the
embedding jobs, :mod:`scalegmn.train.embeddings`); the retrieval examples also render the test
INRs from the column's cache store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from scalegmn.data.cache import load_split
from scalegmn.train.embeddings import read_store
from scalegmn.weightspace.functional import render


def pca_2d(z: np.ndarray) -> np.ndarray:
    """``(N, 2)``: the embeddings projected on their first two principal axes."""
    centred = np.asarray(z, dtype=np.float64) - np.mean(z, axis=0)
    if centred.shape[0] < 2:
        return np.zeros((centred.shape[0], 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[:2].T
    return np.pad(proj, ((0, 0), (0, 2 - proj.shape[1])))


def nearest(z: np.ndarray, query: int, k: int) -> list[int]:
    """The ``k`` rows most similar (cosine of unit vectors) to row ``query``, itself left out."""
    scores = z @ z[query]
    scores[query] = -np.inf
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def projection_figure(table, stores: Mapping[tuple[str, str], str | Path]):
    """A drawer ``draw(path)``: one PCA panel per (row, column), coloured by class or accuracy.

    ``stores``: (view, model) -> the test embedding store of one seed.
    """

    def draw(path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows, cols = list(table.rows), list(table.columns)
        fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.6 * len(cols) + 0.6, 2.3 * len(rows)),
                                 squeeze=False)
        for j, c in enumerate(cols):
            for i, r in enumerate(rows):
                ax = axes[i][j]
                emb = read_store(stores[(c.view, r.key)])
                xy = pca_2d(emb.embedding)
                classes = emb.y is not None and emb.y.dtype.kind in "iu"
                sc = ax.scatter(xy[:, 0], xy[:, 1], s=5, c=emb.y if emb.y is not None else None,
                                cmap="tab10" if classes else "viridis", linewidths=0)
                if emb.y is not None and not classes and i == 0:
                    fig.colorbar(sc, ax=axes[:, j].tolist(), label="test accuracy of the CNN", shrink=0.6)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"{c.label}\n(colour: {'class' if classes else 'accuracy'})", fontsize=8)
                if j == 0:
                    ax.set_ylabel(r.label, fontsize=7)
        fig.suptitle(f"{table.name}: test embeddings, first two principal components (seed {table.seeds[0]})",
                     fontsize=8)
        fig.savefig(path, dpi=100)
        plt.close(fig)

    return draw


def retrieval_figure(table, view: str, stores: Mapping[str, str | Path], cache_store: str | Path,
                     n_queries: int = 2, k: int = 5):
    """A drawer ``draw(path)`` of INR retrieval: per row (model) and query, the query's rendering
    beside its ``k`` nearest test networks' renderings (the query itself left out).

    ``stores``: model -> the test embedding store of ``view`` (one seed); ``cache_store``: the
    view's test cache store (the networks rendered). The queries are the first test networks
    of distinct classes.
    """

    def draw(path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        split = load_split(cache_store)
        shape = (28, 28) if split.spec.layout[-1] == 1 else (32, 32)
        # the first test network of each of the first classes: queries of different classes
        labels = split.y.tolist() if split.y is not None else list(range(split.size))
        queries = [labels.index(c) for c in dict.fromkeys(labels)][:n_queries]
        lines = []  # (label, [rows of the split])
        for r in table.rows:
            emb = read_store(stores[r.key]).embedding
            for q in queries:
                lines.append((f"{r.label}\nquery {q}", [q, *nearest(emb, q, k)]))
        fig, axes = plt.subplots(len(lines), k + 1, figsize=(1.1 * (k + 1) + 1.2, 1.15 * len(lines)), squeeze=False)
        for i, (label, picks) in enumerate(lines):
            with torch.no_grad():
                imgs = render(split.get(picks).net, shape)
            for j in range(len(picks)):
                ax = axes[i][j]
                img = imgs[j].movedim(0, -1).squeeze(-1).clamp(0, 1).numpy()
                ax.imshow(img, cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                label_y = split.y[picks[j]].item() if split.y is not None else ""
                ax.set_title(("query" if j == 0 else f"#{j}") + f" (class {label_y})", fontsize=6)
            axes[i][0].set_ylabel(label, fontsize=6)
        column = table.column(view).label
        fig.suptitle(f"{table.name}: {column} test INRs, a query and its {k} nearest neighbours "
                     f"by embedding (seed {table.seeds[0]})", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    return draw


def table_figures(table, jobs: list[tuple[str, str, int]], embedding_dirs: list[str],
                  test_stores: list[str]) -> dict:
    """The figures of an embedding table, name -> drawer: ``embeddings_pca.png`` and, per INR
    column, ``retrieval_<view>.png``.

    ``embedding_dirs``: the first seed's ``embeddings/`` folders, in the order of that seed's
    ``jobs`` ((view, model, seed)); ``test_stores``: the columns' test cache stores, in column order.
    """
    seed = table.seeds[0]
    keys = [(v, m) for v, m, s in jobs if s == seed]
    stores = {key: Path(d) / "test.zarr" for key, d in zip(keys, embedding_dirs, strict=True)}
    figures = {"embeddings_pca.png": projection_figure(table, stores)}
    for c, cache in zip(table.columns, test_stores, strict=True):
        emb = read_store(stores[(c.view, table.rows[0].key)])
        if emb.y is not None and emb.y.dtype.kind in "iu":  # INR zoos: renderable, with classes
            figures[f"retrieval_{c.view}.png"] = retrieval_figure(
                table, c.view, {r.key: stores[(c.view, r.key)] for r in table.rows}, cache)
    return figures
