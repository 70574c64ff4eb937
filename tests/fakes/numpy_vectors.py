"""An exact in-process vector index with the VectorStore protocol: the planner's oracle.

Brute force over float32 unit vectors, best first with ties broken by file meta id, the
threshold strict, like the real stores. It records every search (``calls``) so tests can check
how a plan used it: how many searches, how long the id lists were. ``max_top_k`` is settable,
so a small index can exercise the planner's "max_top_k reached" path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmdm.adapters.vectors.base import VectorHit, VectorRecord, check_top_k, unit_vectors


@dataclass
class SearchCall:
    top_k: int
    ids: int | None  # length of the file_meta_ids restriction
    native: Any


class NumpyVectorStore:
    filter_fields: Mapping[str, str] = {}  # no native filters: everything is post-filtered

    def __init__(self, dimension: int, *, max_top_k: int = 16384, table: str = "numpy"):
        self.dimension, self.max_top_k, self.table = dimension, max_top_k, table
        self._rows: dict[tuple[str, str], VectorRecord] = {}
        self._matrix: tuple[list[VectorRecord], np.ndarray] | None = None
        self.calls: list[SearchCall] = []

    def ensure_table(self) -> None:
        pass

    def upsert(self, records: list[VectorRecord]) -> None:
        vectors = unit_vectors(np.stack([r.vector for r in records]), self.dimension)
        for r, v in zip(records, vectors):
            self._rows[(r.index_set_id, r.file_meta_id)] = VectorRecord(
                r.index_set_id, r.file_meta_id, r.dataset_id, r.dataset_version, r.uri, v)
        self._matrix = None

    def delete(self, index_set_id: str, file_meta_ids: list[str]) -> None:
        for f in file_meta_ids:
            self._rows.pop((index_set_id, f), None)
        self._matrix = None

    def count(self, index_set_id: str) -> int:
        return sum(1 for s, _ in self._rows if s == index_set_id)

    def file_meta_ids(self, index_set_id: str) -> list[str]:
        return [f for s, f in self._rows if s == index_set_id]

    def _all(self) -> tuple[list[VectorRecord], np.ndarray]:
        if self._matrix is None:
            records = list(self._rows.values())
            matrix = (np.stack([r.vector for r in records]) if records
                      else np.zeros((0, self.dimension), np.float32))
            self._matrix = records, matrix
        return self._matrix

    def search(self, vector: np.ndarray, *, index_set_id: str, top_k: int,
               score_threshold: float | None = None, file_meta_ids: list[str] | None = None,
               dataset_id: str | None = None, dataset_version: str | None = None,
               filter: Any = None) -> list[VectorHit]:
        check_top_k(top_k, self.max_top_k)
        assert filter is None, "the numpy index takes no native filter"
        self.calls.append(SearchCall(top_k, None if file_meta_ids is None
                                     else len(file_meta_ids), filter))
        records, matrix = self._all()
        wanted = None if file_meta_ids is None else set(file_meta_ids)
        keep = [i for i, r in enumerate(records) if r.index_set_id == index_set_id
                and (dataset_id is None or r.dataset_id == dataset_id)
                and (dataset_version is None or r.dataset_version == dataset_version)
                and (wanted is None or r.file_meta_id in wanted)]
        scores = matrix[keep] @ unit_vectors(vector, self.dimension)[0]
        ranked = sorted(zip(keep, scores.tolist()),
                        key=lambda p: (-p[1], records[p[0]].file_meta_id))[:top_k]
        return [VectorHit(records[i].file_meta_id, records[i].uri, s) for i, s in ranked
                if score_threshold is None or s > score_threshold]

    def close(self) -> None:
        pass
