"""Vector-store backends for the contract suite: Milvus Lite and pgvector (on the embedded
PostgreSQL) for real, Elasticsearch as a fake (approximate knn, as ES's HNSW is).

One Milvus Lite database and one fake server per test module (Milvus Lite takes ~0.5 s per
collection and one process per path); each test gets fresh tables, so tests stay independent.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from mmdm.adapters.vectors.base import NativeFilter, VectorRecord, VectorStore
from tests.fakes.fake_elasticsearch import FakeElasticsearch

_table_numbers = itertools.count()


@dataclass
class Backend:
    name: str
    # make(dimension, table=None, **options) -> a store on a fresh (or the named) table
    make: Callable[..., VectorStore]
    # equals(store, field, value) -> a native filter "field == value"
    equals: Callable[[VectorStore, str, str], NativeFilter]
    # Whether an unrestricted search is exact (Milvus FLAT, pgvector below its ANN threshold)
    # or approximate (Elasticsearch's HNSW: the fake walks a graph as ES does).
    exact: bool = True


@pytest.fixture(scope="module")
def milvus_lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """(path, client) of the module's Milvus Lite database."""
    pytest.importorskip("milvus_lite")
    from pymilvus import MilvusClient

    path = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    client = MilvusClient(path)
    yield path, client
    client.close()


@pytest.fixture(scope="module")
def fake_es() -> Iterator[FakeElasticsearch]:
    server = FakeElasticsearch().start()
    yield server
    server.stop()


def fresh_table() -> str:
    return f"vectors_{next(_table_numbers)}"


@pytest.fixture(scope="module")
def pgvector_metadata(pgvector_admin_dsn: str) -> Iterator[Any]:
    """A PostgreSQL metadata store (one throw-away database per module) holding the tables."""
    from mmdm.adapters.metadata import open_store
    from tests.conftest import throwaway_database

    with throwaway_database(pgvector_admin_dsn, "mmdm_vec") as dsn:
        store = open_store(dsn)
        yield store
        store.close()


@pytest.fixture(params=["milvus-lite", "es-fake", "pgvector"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "pgvector":
        from psycopg import sql

        from mmdm.adapters.vectors.pgvector import PgVectorStore

        metadata = request.getfixturevalue("pgvector_metadata")

        def make_pg(dimension: int, table: str | None = None, **options: Any) -> VectorStore:
            return PgVectorStore(metadata, table or fresh_table(), dimension, **options)

        return Backend(request.param, make_pg, lambda store, name, value: sql.SQL(
            "v.{} = {}").format(sql.Identifier(name), sql.Literal(value)))
    if request.param == "milvus-lite":
        from mmdm.adapters.vectors.milvus import MilvusVectorStore, quote_literal

        path, client = request.getfixturevalue("milvus_lite")

        def make_milvus(dimension: int, table: str | None = None, **options: Any) -> VectorStore:
            options.setdefault("index_type", "FLAT")
            return MilvusVectorStore(path, table or fresh_table(), dimension, client=client,
                                     **options)

        return Backend(request.param, make_milvus,
                       lambda store, name, value: f"{name} == {quote_literal(value)}")

    from mmdm.adapters.vectors.elasticsearch import ElasticsearchVectorStore

    server = request.getfixturevalue("fake_es")

    def make_es(dimension: int, table: str | None = None, **options: Any) -> VectorStore:
        return ElasticsearchVectorStore(hosts=server.url, index=table or fresh_table(),
                                        dimension=dimension, **options)

    return Backend(request.param, make_es,
                   lambda store, name, value: {"term": {store.filter_fields[name]: value}},
                   exact=False)


def unit_rows(n: int, dimension: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def records(vectors: np.ndarray, index_set_id: str = "set-a", *, prefix: str = "dfm-",
            dataset_id: str = "ds-1", dataset_version: str = "v1") -> list[VectorRecord]:
    return [VectorRecord(index_set_id, f"{prefix}{i:05d}", dataset_id, dataset_version,
                         f"oss://bucket/images/{prefix}{i:05d}.jpg", v)
            for i, v in enumerate(vectors)]
