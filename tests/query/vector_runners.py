"""The case table on vector stores: the dataset's ACTIVE rows as vectors, filtered natively.

An index set holds the vectors of ACTIVE files only (index jobs drop deleted files' vectors), so
only those rows are loaded, plus a decoy version that must never match. A runner compiles the
query's filter with ``compile_milvus`` / ``compile_es`` and passes it to the store's ``search``
as its native filter; ``top_k`` exceeds the row count, so the hits are every match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mmdm.adapters.vectors.base import VectorRecord, VectorStore
from mmdm.query import Query
from mmdm.query.compile.es import compile_es
from mmdm.query.compile.milvus import compile_milvus

from .dataset import RECORDS

DATASET, VERSION, DECOY, INDEX_SET = "ds-q", "v1", "v2", "set-q"
DIMENSION = 8
Runner = Callable[[Query], set[str]]


def _records() -> list[VectorRecord]:
    rng = np.random.default_rng(7)
    out = []
    for version, prefix in ((VERSION, ""), (DECOY, "decoy-")):
        for r in RECORDS:
            if r["Status"] == "ACTIVE":
                out.append(VectorRecord(INDEX_SET, prefix + r["DatasetFileMetaId"], DATASET,
                                        version, r["Uri"], rng.standard_normal(DIMENSION)))
    return out


def load(store: VectorStore) -> VectorStore:
    store.ensure_table()
    store.upsert(_records())
    return store


def _search(store: VectorStore, native: Any) -> set[str]:
    hits = store.search(np.ones(DIMENSION, dtype=np.float32), index_set_id=INDEX_SET,
                        top_k=100, dataset_id=DATASET, dataset_version=VERSION, filter=native)
    ids = [h.file_meta_id for h in hits]
    assert len(ids) == len(set(ids)), "duplicate hits"
    return set(ids)


def milvus_runner(store: VectorStore) -> Runner:
    def run(query: Query) -> set[str]:
        return _search(store, compile_milvus(query).expr or None)

    return run


def es_runner(store: VectorStore) -> Runner:
    def run(query: Query) -> set[str]:
        return _search(store, compile_es(query, store.filter_fields).body)

    return run
