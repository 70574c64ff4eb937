"""Milvus specifics, on Milvus Lite: literal escaping, user-created collections, ANN index
types, error mapping."""

from __future__ import annotations

import dataclasses

import grpc
import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from mmdm.adapters.errors import AdapterError, ConfigError
from mmdm.adapters.vectors.milvus import MilvusVectorStore, _milvus_errors, quote_literal

from .conftest import fresh_table, records, unit_rows

DIM = 16


@pytest.fixture
def lite(milvus_lite: tuple[str, MilvusClient]):
    path, client = milvus_lite

    def make(table: str | None = None, dimension: int = DIM, **options) -> MilvusVectorStore:
        return MilvusVectorStore(path, table or fresh_table(), dimension, client=client,
                                 **options)

    return make, client


def user_collection(client: MilvusClient, *, drop: str | None = None, metric: str = "IP",
                    uri_length: int = 512, index: bool = True) -> str:
    """A collection made outside the adapter, optionally without one PAI field."""
    table = fresh_table()
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    for name in ("index_set_id", "file_meta_id", "dataset_id", "dataset_version"):
        if name != drop:
            schema.add_field(name, DataType.VARCHAR, max_length=128)
    schema.add_field("uri", DataType.VARCHAR, max_length=uri_length)
    schema.add_field("file_vector", DataType.FLOAT_VECTOR, dim=DIM)
    params = None
    if index:
        params = client.prepare_index_params()
        params.add_index("file_vector", index_type="FLAT", metric_type=metric)
    client.create_collection(table, schema=schema, index_params=params)
    return table


@pytest.mark.parametrize("value, literal", [
    ("plain", '"plain"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("two\nlines\r", '"two\\nlines\\r"'),
    ("tab\t", '"tab\\t"'),
    ("O'Brien", "\"O'Brien\""),
    ("画像", '"画像"'),
])
def test_quote_literal(value: str, literal: str) -> None:
    assert quote_literal(value) == literal


@pytest.mark.parametrize("kwargs, message", [
    ({"uri": "milvus-data"}, "neither http"),
    ({"table": "bad-name"}, "collection name"),
    ({"index_type": "IVF_PQ"}, "index_type"),
])
def test_bad_settings_are_config_errors(kwargs: dict, message: str) -> None:
    settings = {"uri": "http://127.0.0.1:19530", "table": "ok", "dimension": DIM, **kwargs}
    with pytest.raises(ConfigError, match=message):
        MilvusVectorStore(settings.pop("uri"), settings.pop("table"), settings.pop("dimension"),
                          **settings)


@pytest.mark.parametrize("index_type", ["HNSW", "AUTOINDEX"])
def test_ann_index_types_search_well(lite, index_type: str) -> None:
    make, client = lite
    store = make(index_type=index_type)
    vectors = unit_rows(1000, DIM, seed=1)
    batch = records(vectors)
    store.upsert(batch)
    index = client.describe_index(store.table, "file_vector")
    assert (index["index_type"], index["metric_type"]) == (index_type, "IP")
    found = 0
    for query in unit_rows(10, DIM, seed=2):
        hits = store.search(query, index_set_id="set-a", top_k=10)
        expected = {batch[i].file_meta_id for i in np.argsort(-(vectors @ query))[:10]}
        found += len({h.file_meta_id for h in hits} & expected)
        by_id = {r.file_meta_id: r.vector for r in batch}
        np.testing.assert_allclose([h.score for h in hits],
                                   [float(by_id[h.file_meta_id] @ query) for h in hits],
                                   atol=1e-4)
    assert found / 100 >= 0.9


def test_user_collection_with_cosine_metric_is_adopted(lite) -> None:
    make, client = lite
    table = user_collection(client, metric="COSINE")
    client.release_collection(table)
    store = make(table)
    vectors = unit_rows(20, DIM, seed=3)
    store.upsert(records(vectors))
    hits = store.search(vectors[7], index_set_id="set-a", top_k=2)
    assert hits[0].file_meta_id == "dfm-00007"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)  # not cos - 1: the index's metric


def test_user_collection_without_index_gets_one(lite) -> None:
    make, client = lite
    table = user_collection(client, index=False)
    store = make(table)
    store.upsert(records(unit_rows(5, DIM)))
    assert len(store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=3)) == 3


def test_schema_problems_are_named(lite) -> None:
    make, client = lite
    with pytest.raises(ConfigError, match="field 'dataset_version' is missing"):
        make(user_collection(client, drop="dataset_version")).ensure_table()
    with pytest.raises(ConfigError, match="metric L2"):
        make(user_collection(client, metric="L2")).ensure_table()


def test_losing_the_create_race_adopts_the_collection(lite,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make, client = lite
    # The other worker's collection has a smaller uri limit than ours: it must be adopted.
    table = user_collection(client, uri_length=40)
    answers = iter([False, True])
    monkeypatch.setattr(client, "has_collection", lambda *_, **__: next(answers))
    store = make(table)
    store.ensure_table()
    monkeypatch.undo()
    with pytest.raises(AdapterError, match="uri"):
        store.upsert([dataclasses.replace(records(unit_rows(1, DIM))[0],
                                          uri="oss://b/" + "x" * 40)])


def test_varchar_limits_are_input_errors(lite) -> None:
    make, client = lite
    store = make(user_collection(client, uri_length=40))
    batch = records(unit_rows(1, DIM))
    with pytest.raises(AdapterError) as err:
        store.upsert([dataclasses.replace(batch[0], uri="oss://b/" + "x" * 40)])
    assert err.value.is_input_error and "uri" in err.value.message


def test_released_collection_is_reloaded_for_search(lite) -> None:
    make, client = lite
    store = make()
    store.upsert(records(unit_rows(5, DIM)))
    client.release_collection(store.table)
    assert len(store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=2)) == 2
    assert store.count("set-a") == 5


def test_bad_expression_is_an_input_error(lite) -> None:
    make, _ = lite
    store = make()
    store.upsert(records(unit_rows(3, DIM)))
    with pytest.raises(AdapterError) as err:
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=3,
                     filter="no_such_field == 1")
    assert err.value.is_input_error and not err.value.retriable
    with pytest.raises(AdapterError, match="expression string"):
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=3, filter={"a": 1})


class _RpcError(grpc.RpcError):
    def __init__(self, status: grpc.StatusCode):
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status


@pytest.mark.parametrize("exc, retriable", [
    (MilvusException(code=2, message="service unavailable"), True),
    (MilvusException(code=8, message="rate limit exceeded"), True),
    (MilvusException(message="[search] Retry timeout: 5s"), True),
    (MilvusException(code=1100, message="invalid parameter"), False),
    (MilvusException(code=100, message="collection not found"), False),
    (_RpcError(grpc.StatusCode.UNAVAILABLE), True),
    (_RpcError(grpc.StatusCode.DEADLINE_EXCEEDED), True),
    (_RpcError(grpc.StatusCode.INVALID_ARGUMENT), False),
])
def test_errors_are_classified(exc: Exception, retriable: bool) -> None:
    with pytest.raises(AdapterError) as err, _milvus_errors("search"):
        raise exc
    assert err.value.retriable is retriable
    assert err.value.is_input_error is not retriable
