"""Elasticsearch specifics, against the fake: compatibility headers, the request bodies we send
(golden files), user-created mappings, score conversion per similarity, refresh, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from mmdm.adapters.errors import AdapterError, ConfigError
from mmdm.adapters.vectors.elasticsearch import ElasticsearchVectorStore, pin_compatibility
from tests.fakes.fake_elasticsearch import FakeElasticsearch

from .conftest import fresh_table, records, unit_rows

GOLDEN = Path(__file__).parent / "golden"
DIM = 8


def assert_golden(request: pytest.FixtureRequest, name: str, data: object) -> None:
    """Compare with golden/<name> (sorted-key JSON); ``--update-golden`` (when the suite
    registers it) or MMDM_UPDATE_GOLDEN=1 rewrites the file instead."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = GOLDEN / name
    if request.config.getoption("--update-golden", False) or os.environ.get("MMDM_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{name} differs from the golden file"


def make(fake: FakeElasticsearch, **options) -> ElasticsearchVectorStore:
    options.setdefault("dimension", DIM)
    return ElasticsearchVectorStore(hosts=fake.url, index=options.pop("index", fresh_table()),
                                    **options)


def create_index(fake: FakeElasticsearch, index: str, properties: dict) -> None:
    """An index as a user would make it, outside the adapter."""
    client = pin_compatibility(Elasticsearch(fake.url), 8)
    client.indices.create(index=index, mappings={"properties": properties})


def test_requests_ask_for_es8_compatibility(fake_es: FakeElasticsearch) -> None:
    start = len(fake_es.requests)
    store = make(fake_es)
    store.upsert(records(unit_rows(3, DIM)))
    store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=2)
    sent = fake_es.requests[start:]
    assert {r.path.rsplit("/", 1)[-1] for r in sent} >= {"_bulk", "_refresh", "_search"}
    for r in sent:
        assert "compatible-with=8" in r.headers["accept"]
        assert "compatible-with=8" in r.headers.get("content-type", "compatible-with=8")


def test_client_defaults_are_refused_by_an_8x_server(fake_es: FakeElasticsearch) -> None:
    import elasticsearch

    if int(elasticsearch.__versionstr__.split(".")[0]) < 9:  # an 8.x client speaks 8 anyway
        make(fake_es, compat_major=None).ensure_table()
        return
    with pytest.raises(ConfigError, match="compat_major"):
        make(fake_es, compat_major=None).ensure_table()


def test_a_given_client_is_pinned_too(fake_es: FakeElasticsearch) -> None:
    store = ElasticsearchVectorStore(Elasticsearch(fake_es.url), index=fresh_table(),
                                     dimension=DIM)
    store.ensure_table()
    assert store.count("set-a") == 0


def test_mapping_body_matches_golden(fake_es: FakeElasticsearch,
                                     request: pytest.FixtureRequest) -> None:
    store = make(fake_es, index="golden-mapping", dimension=512)
    store.ensure_table()
    created = [r for r in fake_es.requests if r.method == "PUT" and r.path == "/golden-mapping"]
    assert_golden(request, "es_create_index.json", created[-1].body)


def test_knn_search_body_matches_golden(fake_es: FakeElasticsearch,
                                        request: pytest.FixtureRequest) -> None:
    store = make(fake_es, index="golden-search", dimension=4)
    store.upsert(records(unit_rows(3, 4)))
    store.search(np.array([0.5, 0.5, 0.5, 0.5]), index_set_id="set-a", top_k=5,
                 score_threshold=0.25, file_meta_ids=["dfm-00001", "dfm-00002"],
                 dataset_id="ds-1", dataset_version="v1",
                 filter={"terms": {"uri": ["oss://bucket/images/dfm-00001.jpg"]}})
    searched = fake_es.requests_to("/golden-search/_search")
    assert_golden(request, "es_knn_search.json", searched[-1].body)


def test_num_candidates_grow_with_top_k(fake_es: FakeElasticsearch) -> None:
    store = make(fake_es)
    store.upsert(records(unit_rows(3, DIM)))
    for top_k, candidates in ((3, 100), (600, 1200), (10000, 10000)):
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=top_k)
        knn = fake_es.requests_to(f"/{store.table}/_search")[-1].body["knn"]
        assert (knn["k"], knn["num_candidates"]) == (top_k, candidates)
    with pytest.raises(AdapterError, match="top_k"):
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=10001)
    # Restricted to ids: at least one candidate per id, so that ES scores every match.
    for ids, candidates in ((3000, 3000), (20000, 10000)):
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=10,
                     file_meta_ids=[f"f{i}" for i in range(ids)])
        knn = fake_es.requests_to(f"/{store.table}/_search")[-1].body["knn"]
        assert knn["num_candidates"] == candidates


def test_the_fake_knn_is_approximate_as_hnsw_is(fake_es: FakeElasticsearch) -> None:
    """The fake walks a graph like ES: with a sparse one (m 4) and 100 candidates for 10 hits
    it misses true neighbours; a filter that leaves at most num_candidates documents is exact."""
    store = make(fake_es, dimension=32, index_options={"type": "hnsw", "m": 4})
    vectors = unit_rows(2000, 32, seed=20)
    batch = records(vectors)
    store.upsert(batch)
    missed = 0
    for query in unit_rows(10, 32, seed=21):
        hits = store.search(query, index_set_id="set-a", top_k=10)
        best = {batch[i].file_meta_id for i in np.argsort(-(vectors @ query))[:10]}
        missed += len(best - {h.file_meta_id for h in hits})
        few = [r.file_meta_id for r in batch[:100]]
        hits = store.search(query, index_set_id="set-a", top_k=10, file_meta_ids=few)
        best = np.argsort(-(vectors[:100] @ query))[:10]
        assert [h.file_meta_id for h in hits] == [few[i] for i in best]
    assert missed > 0


@pytest.mark.parametrize("similarity", ["dot_product", "cosine", "max_inner_product",
                                        "l2_norm"])
def test_scores_are_dot_products_for_every_similarity(fake_es: FakeElasticsearch,
                                                      similarity: str) -> None:
    store = make(fake_es, similarity=similarity)
    vectors = unit_rows(50, DIM, seed=2)
    store.upsert(records(vectors))
    query = unit_rows(1, DIM, seed=3)[0]
    hits = store.search(query, index_set_id="set-a", top_k=50, score_threshold=-0.2)
    expected = np.sort(vectors @ query)[::-1]
    expected = expected[expected > -0.2]
    np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-4)
    knn = fake_es.requests_to(f"/{store.table}/_search")[-1].body["knn"]
    # The server-side bound is sent only where ES's raw similarity is the dot product.
    assert ("similarity" in knn) == (similarity in ("dot_product", "cosine"))


def test_user_index_with_keyword_subfields_is_adopted(fake_es: FakeElasticsearch) -> None:
    text_with_keyword = {"type": "text",
                         "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    index = fresh_table()
    create_index(fake_es, index, {
        "index_set_id": {"type": "keyword"}, "file_meta_id": text_with_keyword,
        "dataset_id": text_with_keyword, "dataset_version": text_with_keyword,
        "uri": {"type": "text"},
        "file_vector": {"type": "dense_vector", "dims": DIM, "similarity": "dot_product"}})
    store = make(fake_es, index=index)
    store.ensure_table()
    assert store.filter_fields == {"index_set_id": "index_set_id",
                                   "file_meta_id": "file_meta_id.keyword",
                                   "dataset_id": "dataset_id.keyword",
                                   "dataset_version": "dataset_version.keyword"}
    vectors = unit_rows(30, DIM, seed=4)
    batch = records(vectors)
    store.upsert(batch)
    hits = store.search(vectors[3], index_set_id="set-a", top_k=3,
                        file_meta_ids=[batch[3].file_meta_id, batch[9].file_meta_id],
                        dataset_version="v1")
    assert [h.file_meta_id for h in hits] == [batch[3].file_meta_id, batch[9].file_meta_id]
    assert sorted(store.file_meta_ids("set-a")) == [r.file_meta_id for r in batch]


def test_pai_guide_text_mapping_is_refused_with_reasons(fake_es: FakeElasticsearch) -> None:
    index = fresh_table()
    create_index(fake_es, index, {
        "index_set_id": {"type": "keyword"}, "uri": {"type": "text"},
        "file_meta_id": {"type": "text"}, "dataset_id": {"type": "text"},
        "dataset_version": {"type": "text"},
        "file_vector": {"type": "dense_vector", "dims": DIM, "similarity": "dot_product"}})
    with pytest.raises(ConfigError) as err:
        make(fake_es, index=index).ensure_table()
    assert "'file_meta_id' is text without a keyword sub-field" in err.value.message
    assert "'uri'" not in err.value.message  # uri is only returned, never filtered


def test_vector_field_problems_are_named(fake_es: FakeElasticsearch) -> None:
    index = fresh_table()
    create_index(fake_es, index, {
        **{name: {"type": "keyword"} for name in
           ("index_set_id", "file_meta_id", "dataset_id", "dataset_version", "uri")},
        "file_vector": {"type": "dense_vector", "dims": DIM, "element_type": "byte",
                        "index": False}})
    with pytest.raises(ConfigError) as err:
        make(fake_es, index=index).ensure_table()
    assert "stores bytes" in err.value.message and "index: false" in err.value.message


def test_losing_the_create_race_adopts_the_index(fake_es: FakeElasticsearch,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = make(fake_es)
    first.upsert(records(unit_rows(2, DIM)))
    second = make(fake_es, index=first.table)
    monkeypatch.setattr(second._client.indices, "exists", lambda **_: False)
    second.ensure_table()
    assert second.count("set-a") == 2


def test_writes_are_searchable_only_after_refresh(fake_es: FakeElasticsearch) -> None:
    store = make(fake_es, refresh=False)
    store.upsert(records(unit_rows(5, DIM)))
    assert store.count("set-a") == 0  # the fake, like ES, hides unrefreshed writes
    store.refresh()
    assert store.count("set-a") == 5


def test_unreachable_server_is_retriable() -> None:
    store = ElasticsearchVectorStore(hosts="http://127.0.0.1:9", index="x", dimension=DIM,
                                     request_timeout=2)
    with pytest.raises(AdapterError) as err:
        store.ensure_table()
    assert err.value.retriable and not err.value.is_input_error


def test_credentials_are_sent_and_bad_ones_are_config_errors() -> None:
    secured = FakeElasticsearch(basic_auth=("elastic", "s3cret"), info_forbidden=True).start()
    try:
        store = make(secured, basic_auth=("elastic", "s3cret"))
        store.upsert(records(unit_rows(2, DIM)))  # GET / refused (no monitor privilege): fine
        assert store.count("set-a") == 2
        with pytest.raises(ConfigError, match="401"):
            make(secured, basic_auth=("elastic", "wrong")).ensure_table()
    finally:
        secured.stop()


def test_old_server_is_a_config_error() -> None:
    old = FakeElasticsearch(version="8.7.1").start()
    try:
        with pytest.raises(ConfigError, match="8.7.1 is too old"):
            make(old).ensure_table()
    finally:
        old.stop()


def test_bad_native_filter_is_an_input_error(fake_es: FakeElasticsearch) -> None:
    store = make(fake_es)
    store.upsert(records(unit_rows(3, DIM)))
    with pytest.raises(AdapterError) as err:
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=3,
                     filter={"no_such_query": {}})
    assert err.value.is_input_error and not err.value.retriable
    with pytest.raises(AdapterError):
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=3, filter="a == 1")


def test_native_filters_cover_range_exists_and_must_not(fake_es: FakeElasticsearch) -> None:
    store = make(fake_es)
    vectors = unit_rows(12, DIM, seed=5)
    store.upsert(records(vectors[:6], dataset_version="v1")
                 + records(vectors[6:], prefix="late-", dataset_version="v3"))
    query = unit_rows(1, DIM, seed=6)[0]

    def ids(native: dict) -> set[str]:
        return {h.file_meta_id for h in store.search(query, index_set_id="set-a", top_k=12,
                                                     filter=native)}

    assert len(ids({"range": {"dataset_version": {"gt": "v2"}}})) == 6
    assert ids({"bool": {"must_not": [{"range": {"dataset_version": {"lte": "v1"}}}]}}) == ids(
        {"term": {"dataset_version": "v3"}})
    assert len(ids({"exists": {"field": "uri"}})) == 12
    assert ids({"match_none": {}}) == set()
