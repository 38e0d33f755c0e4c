"""``scalegmn search EMBEDDINGS QUERY --k 5``: the networks nearest to a query, by embedding.

EMBEDDINGS is an embedding store (``scalegmn embed`` or an embedding job's
``embeddings/<split>.zarr``). QUERY is a network of it (its id, its row number, or a unique end
of its id, tried in that order), or another embedding store written with the same checkpoint (each of its networks
is a query). Similarity is the cosine of the unit embeddings; a query found in EMBEDDINGS is
left out of its own results.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scalegmn.errors import DataError
from scalegmn.train.embeddings import EmbeddingSet, read_store
from scalegmn.train.predict import write_csv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scalegmn search`` arguments to ``parser``."""
    parser.add_argument("embeddings", type=Path, help="embedding store to search (FILE.zarr)")
    parser.add_argument("query", help="a network id of EMBEDDINGS (or a unique end of one), its row number, "
                        "or another embedding store whose networks are the queries")
    parser.add_argument("--k", type=int, default=5, help="neighbours per query (default 5)")
    parser.add_argument("--out", type=Path, help="also write the results as CSV")


def find_row(emb: EmbeddingSet, query: str, where: Path) -> int:
    """The row of network ``query`` in ``emb``: its id, else a row number, else a unique end of an id."""
    if query in emb.source:
        return emb.source.index(query)
    if query.isdigit() and int(query) < emb.size:  # a row number before an end of an id ("3")
        return int(query)
    ends = [i for i, s in enumerate(emb.source) if s.endswith(query)]
    if len(ends) == 1:
        return ends[0]
    if len(ends) > 1:
        raise DataError(where, f"{len(ends)} networks' ids end with {query!r} (e.g. {emb.source[ends[0]]}); "
                               "give more of the id")
    raise DataError(where, f"holds no network {query!r}: give an id, a row number below {emb.size}, or an "
                           "embedding store")


def search(emb: EmbeddingSet, queries: np.ndarray, own_rows: list[int | None], k: int) -> list[list[tuple[int, float]]]:
    """Per query embedding, its ``k`` nearest rows of ``emb`` as (row, cosine similarity),
    most similar first; ``own_rows[i]`` (the query's own row, or None) is left out."""
    scores = np.asarray(queries, np.float64) @ np.asarray(emb.embedding, np.float64).T
    out = []
    for i, own in enumerate(own_rows):
        s = scores[i].copy()
        if own is not None:
            s[own] = -np.inf
        order = np.argsort(-s, kind="stable")[: min(k, emb.size - (own is not None))]
        out.append([(int(j), float(s[j])) for j in order])
    return out


def run(args: argparse.Namespace) -> int:
    """Print (and with ``--out`` write) the nearest networks of each query; exit status 0."""
    if args.k < 1:
        raise DataError(args.embeddings, f"--k {args.k}: give at least 1")
    emb = read_store(args.embeddings)
    query_path = Path(args.query)
    if query_path.exists():
        q = read_store(query_path)
        if q.embedding.shape[1] != emb.embedding.shape[1]:
            raise DataError(query_path, f"embeddings of size {q.embedding.shape[1]}, {args.embeddings} holds "
                                        f"{emb.embedding.shape[1]}: embed both with the same checkpoint")
        names, vectors, own = q.source, q.embedding, [None] * q.size
    else:
        row = find_row(emb, args.query, args.embeddings)
        names, vectors, own = [emb.source[row]], emb.embedding[row: row + 1], [row]
    rows = []
    for name, hits in zip(names, search(emb, vectors, own, args.k), strict=True):
        print(f"query {name}")
        for rank, (j, sim) in enumerate(hits, 1):
            y = "" if emb.y is None else f"  y={emb.y[j]:.4g}" if emb.y.dtype.kind == "f" else f"  y={emb.y[j]}"
            print(f"  {rank:2d}. {sim:+.4f}  {emb.source[j]}{y}")
            rows.append({"query": name, "rank": rank, "source": emb.source[j], "similarity": round(sim, 6),
                         **({"y": emb.y[j].item()} if emb.y is not None else {})})
    if args.out:
        write_csv(rows, args.out)
        print(f"wrote {len(rows)} rows to {args.out}")
    return 0
