"""Backends for the query conformance suite: each loads ``dataset.RECORDS`` once per session.

A backend is a function ``Query -> set of DatasetFileMetaId``. Add Milvus / Elasticsearch by
adding a loader fixture and a name to ``BACKENDS`` (the case table's ``gaps`` declare what a
backend cannot do yet).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from mmdm.adapters.metadata import FileMeta, MetadataStore, open_store
from mmdm.query import Query, compile_sql, select_rows
from tests.conftest import throwaway_database

from . import vector_runners
from .dataset import RECORDS

Runner = Callable[[Query], set[str]]
BACKENDS = ["oracle", "sqlite", "postgres"]
# Vector stores run the cases their index table can express (cases.VECTOR_CASES); later: es-live.
VECTOR_BACKENDS = ["milvus", "es-fake"]


def oracle(query: Query) -> set[str]:
    return {r["DatasetFileMetaId"] for r in select_rows(query, RECORDS)}


def load(store: MetadataStore) -> tuple[str, str]:
    """Load the records into a fresh dataset version, plus a decoy version that must never match."""
    ds = store.create_dataset(name=f"q-{uuid.uuid4().hex[:8]}", uri="oss://bucket/data")
    version = store.create_version(ds.dataset_id).version_name
    decoy = store.create_version(ds.dataset_id).version_name
    store.upsert_file_metas(
        [FileMeta.from_record(r, dataset_id=ds.dataset_id, dataset_version=version)
         for r in RECORDS]
        + [FileMeta.from_record({**r, "DatasetFileMetaId": "decoy-" + r["DatasetFileMetaId"]},
                                dataset_id=ds.dataset_id, dataset_version=decoy)
           for r in RECORDS])
    return ds.dataset_id, version


def sql_runner(store: MetadataStore, dataset_id: str, version: str) -> Runner:
    def run(query: Query) -> set[str]:
        compiled = compile_sql(query, store.dialect, dataset_id, version)
        rows = store.fetchall(compiled.sql, compiled.params)
        ids = [r[1] for r in rows]
        assert len(ids) == len(set(ids)), "duplicate rows"
        count = compile_sql(query, store.dialect, dataset_id, version, count=True)
        assert store.fetchall(count.sql, count.params)[0][0] == len(ids)
        return set(ids)

    return run


Loaded = tuple[MetadataStore, str, str]  # store, dataset_id, dataset_version


@pytest.fixture(scope="session")
def sqlite_loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('query') / 'meta.db'}")
    yield (store, *load(store))
    store.close()


@pytest.fixture(scope="session")
def sqlite_backend(sqlite_loaded: Loaded) -> Runner:
    return sql_runner(*sqlite_loaded)


@pytest.fixture(scope="session")
def postgres_db(pg_admin_dsn: str) -> Iterator[str]:
    """A throw-away database for the whole session (``pg_dsn`` is per test)."""
    with throwaway_database(pg_admin_dsn, "mmdm_query") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def postgres_loaded(postgres_db: str) -> Iterator[Loaded]:
    store = open_store(postgres_db)
    yield (store, *load(store))
    store.close()


@pytest.fixture(scope="session")
def postgres_backend(postgres_loaded: Loaded) -> Runner:
    return sql_runner(*postgres_loaded)


@pytest.fixture(scope="session")
def milvus_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """Milvus Lite for real (FLAT: exact search), one database per session."""
    pytest.importorskip("milvus_lite")
    from mmdm.adapters.vectors.milvus import MilvusVectorStore

    path = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    store = vector_runners.load(MilvusVectorStore(path, "query_cases", vector_runners.DIMENSION,
                                                  index_type="FLAT"))
    yield vector_runners.milvus_runner(store)
    store.close()


@pytest.fixture(scope="session")
def es_fake_backend() -> Iterator[Runner]:
    from mmdm.adapters.vectors.elasticsearch import ElasticsearchVectorStore
    from tests.fakes.fake_elasticsearch import FakeElasticsearch

    server = FakeElasticsearch().start()
    store = ElasticsearchVectorStore(hosts=server.url, index="query-cases",
                                     dimension=vector_runners.DIMENSION)
    yield vector_runners.es_runner(vector_runners.load(store))
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_loaded(request: pytest.FixtureRequest) -> Loaded:
    """The loaded store of each SQL engine."""
    return request.getfixturevalue(f"{request.param}_loaded")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, Runner]:
    name = request.param
    if name == "oracle":
        return name, oracle
    return name, request.getfixturevalue(f"{name}_backend")


@pytest.fixture(params=VECTOR_BACKENDS)
def vector_backend(request: pytest.FixtureRequest) -> tuple[str, Runner]:
    name = request.param
    return name, request.getfixturevalue(f"{name.replace('-', '_')}_backend")
