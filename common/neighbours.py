"""Nearest-neighbour search: exact in numpy, or an HNSW graph (faiss ``IndexHNSWFlat``) above a size
where exact search gets slow. Two metrics: ``"cosine"`` (rows L2-normalised, similarity = the
cosine) and ``"l2"`` (rows as they are, Euclidean distance d, similarity = exp(-d): 1 for the
same point, 0.9 at distance 0.105).

One class for the three users: the exporter builds and saves the comparables index, the
evaluation searches it for the test rows (the k-nearest-neighbour predictor), and the service
loads it read-only with a model version and searches it inside the micro-batcher's call.

- ``Neighbours.build(vectors, search=..., metric=...)``: ``"exact"`` keeps the vectors for a matrix
  product, ``"hnsw"`` also builds the graph.
- ``search(queries, k)``: the k most similar stored rows of each query, most similar first:
  indices [b, k] (int64) and similarities [b, k] (float32). Fewer than k stored rows: k is cut
  to n.
- ``save(folder)`` writes ``vectors.npy`` (float16) and, for HNSW, ``hnsw.faiss``; it returns
  their names. ``load(folder, search, ef_search)`` reads them back; the caller checks their
  hashes first (``common.files`` / the model card's ``comparables.files``).

numpy (exact search on one BLAS thread, threadpoolctl), and faiss only for HNSW (imported when
needed).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["EXACT_MAX", "HNSW_FILE", "VECTORS_FILE", "Neighbours", "choose_search", "one_blas_thread", "unit_rows"]

VECTORS_FILE = "vectors.npy"
HNSW_FILE = "hnsw.faiss"
Search = Literal["exact", "hnsw"]
Metric = Literal["cosine", "l2"]
# Exact search up to this many stored rows, HNSW above (`make bench`: bench/comparables.py).
EXACT_MAX = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 64


_BLAS: Any = None  # a threadpoolctl.ThreadpoolController, made on first use


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """numpy's matrix products on the calling thread alone, for the block's duration.

    One query's product is too small to share: on busy cores, waking BLAS worker threads cost
    up to 8 ms per query where one thread takes 0.3-3 ms (`make bench`, 20k-200k rows). About
    15 us to enter and leave.
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def choose_search(rows: int, search: str = "auto", exact_max: int = EXACT_MAX) -> Search:
    """``"auto"``: exact up to ``exact_max`` rows, HNSW above; else ``search`` itself."""
    if search == "auto":
        return "exact" if rows <= exact_max else "hnsw"
    if search not in ("exact", "hnsw"):
        raise ValueError(f"search must be auto, exact or hnsw, not {search!r}")
    return search  # type: ignore[return-value]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a [rows, dim] array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Neighbours:
    """Stored unit vectors and a way to search them."""

    def __init__(
        self, vectors: np.ndarray, ann: object | None = None, ef_search: int = HNSW_EF_SEARCH, metric: Metric = "cosine"
    ) -> None:
        if metric not in ("cosine", "l2"):
            raise ValueError(f"metric must be cosine or l2, not {metric!r}")
        self.metric = metric
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.norms2 = np.einsum("ij,ij->i", self.vectors, self.vectors)  # l2: |x|^2 of each stored row
        self.one_thread = True  # exact search: the product on one BLAS thread (one_blas_thread)
        self.ann = ann  # a faiss index over the same vectors, or None (exact search)
        self.ef_search = ef_search
        if ann is not None:
            ann.hnsw.efSearch = ef_search  # type: ignore[attr-defined]

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def search_kind(self) -> Search:
        return "exact" if self.ann is None else "hnsw"

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        search: Search = "exact",
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        metric: Metric = "cosine",
    ) -> Neighbours:
        """The stored rows (normalised for ``"cosine"``) and, for ``"hnsw"``, the graph (every core)."""
        rows = _rows(vectors, metric)
        if search == "exact":
            return cls(rows, metric=metric)
        import faiss

        kind = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        index = faiss.IndexHNSWFlat(rows.shape[1], m, kind)
        index.hnsw.efConstruction = ef_construction
        index.add(rows)
        return cls(rows, index, ef_search, metric)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar stored rows of each query: (indices [b, k], similarities [b, k])."""
        q = _rows(np.atleast_2d(queries), self.metric)
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have {q.shape[1]} dimensions, the index {self.dim}")
        k = min(int(k), self.size)
        if k <= 0:
            return np.zeros((q.shape[0], 0), np.int64), np.zeros((q.shape[0], 0), np.float32)
        if self.ann is not None:
            found, idx = self.ann.search(q, k)  # type: ignore[attr-defined]
            return idx.astype(np.int64), self._similarity(found, q, squared=True)
        with one_blas_thread() if self.one_thread else contextlib.nullcontext():
            scores = q @ self.vectors.T  # [b, n]
        if self.metric == "l2":  # the nearest: the largest 2 q.x - |x|^2 (|q|^2 is the same for all)
            scores = 2.0 * scores - self.norms2[None, :]
        if k < self.size:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(self.size), (q.shape[0], self.size))
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        found = np.take_along_axis(top, order, axis=1)
        return np.take_along_axis(part, order, axis=1).astype(np.int64), self._similarity(found, q, squared=False)

    def _similarity(self, found: np.ndarray, q: np.ndarray, squared: bool) -> np.ndarray:
        """Cosine as found; l2: exp(-distance), from faiss' squared distances or from 2 q.x - |x|^2."""
        if self.metric == "cosine":
            return found.astype(np.float32)
        d2 = found if squared else np.einsum("ij,ij->i", q, q)[:, None] - found
        return np.exp(-np.sqrt(np.maximum(d2, 0.0))).astype(np.float32)

    def save(self, folder: Path) -> list[str]:
        """Write the vectors (float16) and the HNSW graph, if any, into ``folder``; their names."""
        np.save(folder / VECTORS_FILE, self.vectors.astype(np.float16), allow_pickle=False)
        names = [VECTORS_FILE]
        if self.ann is not None:
            import faiss

            faiss.write_index(self.ann, str(folder / HNSW_FILE))
            names.append(HNSW_FILE)
        return names

    @classmethod
    def load(
        cls, folder: Path, search: Search, ef_search: int = HNSW_EF_SEARCH, metric: Metric = "cosine"
    ) -> Neighbours:
        """Read what ``save`` wrote (check the files' hashes first). Raises ValueError."""
        vectors = np.load(folder / VECTORS_FILE, allow_pickle=False)
        if vectors.ndim != 2 or vectors.dtype != np.float16 or vectors.shape[0] == 0:
            raise ValueError(f"{VECTORS_FILE} must be a non-empty float16 [rows, dim] array")
        rows = _rows(vectors.astype(np.float32), metric)  # float16 rounding: normalise again
        if not np.isfinite(rows).all():
            raise ValueError(f"{VECTORS_FILE} holds non-finite values")
        if search == "exact":
            return cls(rows, metric=metric)
        import faiss

        index = faiss.read_index(str(folder / HNSW_FILE))
        if index.ntotal != rows.shape[0] or index.d != rows.shape[1]:
            raise ValueError(f"{HNSW_FILE} holds {index.ntotal} x {index.d} vectors, {VECTORS_FILE} {rows.shape}")
        return cls(rows, index, ef_search, metric)


def _rows(x: np.ndarray, metric: Metric) -> np.ndarray:
    if metric == "cosine":
        return unit_rows(x)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a [rows, dim] array, got shape {x.shape}")
    return x
