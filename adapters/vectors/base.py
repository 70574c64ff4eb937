"""The index table every vector store keeps, in PAI's schema, and the calls the jobs make."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import AdapterError

# PAI's index-table fields; the only attributes a vector store can filter on.
FILTER_FIELDS = ("index_set_id", "file_meta_id", "dataset_id", "dataset_version", "uri")

# A filter in the backend's own language, ANDed with the store's own conditions: a Milvus
# boolean expression (str) or an Elasticsearch query clause (dict). It may name only the
# fields in the store's ``filter_fields``, spelled as that mapping says.
NativeFilter = str | Mapping[str, Any]


def record_id(index_set_id: str, file_meta_id: str) -> str:
    """Primary key: the same file in the same index set always lands on the same row."""
    return hashlib.sha256(f"{index_set_id}\n{file_meta_id}".encode()).hexdigest()


@dataclass(frozen=True)
class VectorRecord:
    index_set_id: str
    file_meta_id: str
    dataset_id: str
    dataset_version: str
    uri: str
    vector: np.ndarray  # float32, L2-normalised

    @property
    def id(self) -> str:
        return record_id(self.index_set_id, self.file_meta_id)


@dataclass(frozen=True)
class VectorHit:
    file_meta_id: str
    uri: str
    score: float  # similarity (dot product of normalised vectors), higher is closer


def unit_vectors(vectors: np.ndarray | list[np.ndarray], dimension: int) -> np.ndarray:
    """``vectors`` as float32 rows of length one, or an input error.

    Rows are renormalised in float32 so scores stay similarities on every backend (and
    Elasticsearch's ``dot_product``, which rejects vectors whose length is off by ~1e-4, accepts
    what an embedding model returned after a float16 or JSON round trip).

    Raises:
        AdapterError: (input error) wrong dimension, a zero vector, NaN or infinity.
    """
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:  # ragged rows, non-numbers
        raise AdapterError(f"vectors are not a numeric matrix: {exc}",
                           is_input_error=True) from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dimension:
        raise AdapterError(f"vector shape {arr.shape[1:]} does not match the table's dimension "
                           f"{dimension}", is_input_error=True)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise AdapterError("vectors must be finite and non-zero", is_input_error=True)
    return arr / norms


def check_top_k(top_k: int, max_top_k: int) -> None:
    if not 1 <= top_k <= max_top_k:
        raise AdapterError(f"top_k must be between 1 and {max_top_k}, got {top_k}",
                           is_input_error=True)


def strictly_above(hits: list[VectorHit], score_threshold: float | None) -> list[VectorHit]:
    """Drop hits at or below the threshold, client-side.

    Loses nothing: the backend returns its ``top_k`` best hits in score order, so those above
    the threshold are a prefix of that list and number ``min(top_k, matches above the
    threshold)`` of what the backend found (all of them on an exact store; on an approximate
    one, what its recall gives). No over-fetching is needed; a backend-side
    bound (Milvus ``radius``, Elasticsearch knn ``similarity``) can only save transfer, and
    their inclusive-vs-strict rules differ, so the last word is always this comparison.
    """
    if score_threshold is None:
        return hits
    return [h for h in hits if h.score > score_threshold]


def latest_per_id(records: list[VectorRecord]) -> list[VectorRecord]:
    """One record per primary key, the last one given: a batch never carries a key twice
    (Milvus servers reject that in one upsert)."""
    return list({r.id: r for r in records}.values())


class VectorStore(Protocol):
    table: str
    dimension: int
    max_top_k: int  # the backend's own limit on hits per search
    # Where each PAI field can be filtered in a NativeFilter (absent: not filterable there).
    filter_fields: Mapping[str, str]

    def ensure_table(self) -> None:
        """Create the table when absent; check a user-created one has the PAI fields."""
        ...

    def upsert(self, records: list[VectorRecord]) -> None:
        """Idempotent per (index_set_id, file_meta_id)."""
        ...

    def delete(self, index_set_id: str, file_meta_ids: list[str]) -> None: ...

    def count(self, index_set_id: str) -> int: ...

    def file_meta_ids(self, index_set_id: str) -> list[str]:
        """Every indexed file of the set (tests and consistency checks)."""
        ...

    def search(
        self,
        vector: np.ndarray,
        *,
        index_set_id: str,
        top_k: int,
        score_threshold: float | None = None,
        file_meta_ids: list[str] | None = None,
        dataset_id: str | None = None,
        dataset_version: str | None = None,
        filter: NativeFilter | None = None,
    ) -> list[VectorHit]:
        """The ``top_k`` best hits scoring strictly above ``score_threshold``, best first,
        restricted to ``file_meta_ids`` when given and to rows matching ``filter``."""
        ...

    def close(self) -> None: ...
