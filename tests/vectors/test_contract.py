"""The VectorStore contract, run against every backend (Milvus Lite and the Elasticsearch fake).

Expected results come from exact numpy search over the same unit vectors. An approximate
backend (Elasticsearch's HNSW) is held to what it guarantees: hits best first with their exact
scores, a recall floor, and exact answers where the filter leaves no more documents than it
collects (``num_candidates``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mmdm.adapters.errors import AdapterError, ConfigError
from mmdm.adapters.vectors.base import VectorRecord

from .conftest import Backend, records, unit_rows

DIM = 32


def exact(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best rows by dot product."""
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return order, scores[order]


@pytest.fixture
def loaded(backend: Backend):
    """A store holding 300 files in set-a, and the same vectors again in set-b."""
    store = backend.make(DIM)
    store.ensure_table()
    vectors = unit_rows(300, DIM, seed=1)
    set_a = records(vectors, "set-a")
    store.upsert(set_a + records(vectors, "set-b"))
    yield store, vectors, set_a
    store.close()


def test_ensure_table_creates_then_reopens_and_checks_dimension(backend: Backend) -> None:
    store = backend.make(DIM)
    store.ensure_table()
    store.upsert(records(unit_rows(3, DIM)))
    store.ensure_table()  # idempotent

    reopened = backend.make(DIM, table=store.table)
    reopened.ensure_table()
    assert reopened.count("set-a") == 3

    with pytest.raises(ConfigError) as err:
        backend.make(DIM + 1, table=store.table).ensure_table()
    assert "file_vector" in err.value.message
    assert str(DIM) in err.value.message and str(DIM + 1) in err.value.message


def test_upsert_is_idempotent(backend: Backend) -> None:
    store = backend.make(DIM)
    vectors = unit_rows(200, DIM, seed=2)
    batch = records(vectors)
    store.upsert(batch)
    # Same keys again, half of them with a new vector and uri, plus in-batch duplicates.
    moved = [dataclasses.replace(r, uri=r.uri + "?v=2", vector=-r.vector) for r in batch[:100]]
    store.upsert(batch[100:] + moved + moved[:10])

    ids = store.file_meta_ids("set-a")
    assert len(ids) == len(set(ids)) == 200
    assert set(ids) == {r.file_meta_id for r in batch}
    assert store.count("set-a") == 200
    top = store.search(-vectors[0], index_set_id="set-a", top_k=1)
    assert top[0].file_meta_id == batch[0].file_meta_id
    assert top[0].uri.endswith("?v=2")
    assert top[0].score == pytest.approx(1.0, abs=1e-4)


def test_delete_removes_only_the_given_files(loaded) -> None:
    store, vectors, set_a = loaded
    gone = [r.file_meta_id for r in set_a[:10]]
    store.delete("set-a", gone + ["dfm-never-indexed"])
    assert store.count("set-a") == 290
    assert store.count("set-b") == 300
    assert not set(gone) & set(store.file_meta_ids("set-a"))
    hits = store.search(vectors[0], index_set_id="set-a", top_k=5)
    assert set_a[0].file_meta_id not in {h.file_meta_id for h in hits}
    store.delete("set-a", [])  # nothing to do


def recall(hits, wanted: list[str]) -> float:
    return len({h.file_meta_id for h in hits} & set(wanted)) / len(wanted)


def test_search_matches_exact_dot_products(backend: Backend, loaded) -> None:
    store, vectors, set_a = loaded
    position = {r.file_meta_id: i for i, r in enumerate(set_a)}
    for query in unit_rows(5, DIM, seed=3):
        hits = store.search(query, index_set_id="set-a", top_k=10)
        order, scores = exact(vectors, query, 10)
        # Whatever a backend finds, it reports each file's own exact score, best first.
        found = [position[h.file_meta_id] for h in hits]
        np.testing.assert_allclose([h.score for h in hits], vectors[found] @ query, atol=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert [h.uri for h in hits] == [set_a[i].uri for i in found]
        wanted = [set_a[i].file_meta_id for i in order]
        if backend.exact:
            assert [h.file_meta_id for h in hits] == wanted
            np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-4)
        else:  # HNSW: 100 candidates for 10 hits among 300 files
            assert len(hits) == 10 and recall(hits, wanted) >= 0.9


def test_top_k_caps_hits(loaded) -> None:
    store, vectors, _ = loaded
    assert len(store.search(vectors[0], index_set_id="set-a", top_k=1)) == 1
    assert len(store.search(vectors[0], index_set_id="set-a", top_k=299)) == 299
    assert len(store.search(vectors[0], index_set_id="set-a", top_k=1000)) == 300


def test_score_threshold_is_strict(loaded) -> None:
    store, vectors, _ = loaded
    query = unit_rows(1, DIM, seed=4)[0]
    ranked = store.search(query, index_set_id="set-a", top_k=50)
    # A threshold equal to the 4th score keeps exactly the three above it.
    at_fourth = store.search(query, index_set_id="set-a", top_k=50,
                             score_threshold=ranked[3].score)
    assert [h.file_meta_id for h in at_fourth] == [h.file_meta_id for h in ranked[:3]]
    # More hits above the threshold than top_k: exactly top_k come back.
    assert len(store.search(query, index_set_id="set-a", top_k=2,
                            score_threshold=ranked[3].score)) == 2
    above = int(np.sum(vectors @ query > 0.1))
    assert len(store.search(query, index_set_id="set-a", top_k=300,
                            score_threshold=0.1)) == above
    assert store.search(query, index_set_id="set-a", top_k=10, score_threshold=1.0) == []


def test_file_meta_ids_restrict_the_search(loaded) -> None:
    store, vectors, set_a = loaded
    allowed = list(range(0, 300, 7))
    wanted = [set_a[i].file_meta_id for i in allowed] + ["dfm-not-there"]
    query = unit_rows(1, DIM, seed=5)[0]
    hits = store.search(query, index_set_id="set-a", top_k=5, file_meta_ids=wanted)
    order, scores = exact(vectors[allowed], query, 5)
    assert [h.file_meta_id for h in hits] == [set_a[allowed[i]].file_meta_id for i in order]
    np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-4)
    assert store.search(query, index_set_id="set-a", top_k=5, file_meta_ids=[]) == []


def test_index_sets_are_isolated(loaded) -> None:
    store, vectors, _ = loaded
    store.upsert(records(unit_rows(4, DIM, seed=6), "set-c", prefix="only-c-"))
    hits = store.search(vectors[0], index_set_id="set-c", top_k=10)
    assert len(hits) == 4 and all(h.file_meta_id.startswith("only-c-") for h in hits)
    assert store.count("set-c") == 4
    assert store.count("set-missing") == 0
    assert store.file_meta_ids("set-missing") == []
    assert store.search(vectors[0], index_set_id="set-missing", top_k=3) == []


def test_dataset_filters_and_native_filter(backend: Backend) -> None:
    store = backend.make(DIM)
    vectors = unit_rows(40, DIM, seed=7)
    store.upsert(records(vectors[:20], dataset_version="v1")
                 + records(vectors[20:], prefix="dfm-v2-", dataset_version="v2"))
    query = vectors[25]
    v2 = store.search(query, index_set_id="set-a", top_k=40, dataset_version="v2")
    assert len(v2) == 20 and all(h.file_meta_id.startswith("dfm-v2-") for h in v2)
    assert store.search(query, index_set_id="set-a", top_k=5, dataset_id="other") == []
    native = store.search(query, index_set_id="set-a", top_k=40,
                          filter=backend.equals(store, "dataset_version", "v2"))
    assert [h.file_meta_id for h in native] == [h.file_meta_id for h in v2]


AWKWARD = ['say "cheese"', "back\\slash", "trailing\\", "\\\"", "O'Brien", "line\nbreak",
           "tab\there", "ünïcödé 画像 😀", '" or file_meta_id != "', "{v}", "  spaced  "]


def test_awkward_values_round_trip_and_filter_exactly(backend: Backend) -> None:
    store = backend.make(DIM)
    vectors = unit_rows(len(AWKWARD), DIM, seed=8)
    batch = [VectorRecord(f"set {name}", name, f"ds {name}", "v\"1\\", f"oss://b/{name}.jpg", v)
             for name, v in zip(AWKWARD, vectors, strict=True)]
    store.upsert(batch)
    for record in batch:
        assert store.file_meta_ids(record.index_set_id) == [record.file_meta_id]
        hits = store.search(vectors[0], index_set_id=record.index_set_id, top_k=5,
                            file_meta_ids=[record.file_meta_id], dataset_id=record.dataset_id,
                            dataset_version=record.dataset_version)
        assert [(h.file_meta_id, h.uri) for h in hits] == [(record.file_meta_id, record.uri)]
    store.delete(batch[0].index_set_id, [batch[0].file_meta_id])
    assert store.count(batch[0].index_set_id) == 0
    assert store.count(batch[1].index_set_id) == 1


def test_listing_pages_through_every_file(backend: Backend) -> None:
    store = backend.make(DIM, page_size=70)
    batch = records(unit_rows(500, DIM, seed=9))
    store.upsert(batch)
    ids = store.file_meta_ids("set-a")
    assert sorted(ids) == sorted(r.file_meta_id for r in batch)


def test_recall_on_thousands_of_vectors(backend: Backend) -> None:
    dimension = 64
    store = backend.make(dimension)
    vectors = unit_rows(3000, dimension, seed=10)
    batch = records(vectors)
    store.upsert(batch)
    found = 0.0
    for query in unit_rows(20, dimension, seed=11):
        hits = store.search(query, index_set_id="set-a", top_k=10)
        order, _ = exact(vectors, query, 10)
        found += recall(hits, [batch[i].file_meta_id for i in order])
    # Exact stores find every true neighbour; HNSW is held to a floor (ES asks the graph for
    # 100 candidates per 10 hits).
    assert found / 20 == 1.0 if backend.exact else found / 20 >= 0.9


def test_restricting_to_thousands_of_ids_is_exact(backend: Backend) -> None:
    """The planner's ``ids`` strategy sends up to ``Limits.id_batch`` (4,000) ids per search
    and relies on an exact answer among them. ES is exact when its filter matches no more
    documents than ``num_candidates`` (Lucene then scores every match), so the adapter must ask
    for at least as many candidates as ids."""
    dimension = 64
    store = backend.make(dimension)
    vectors = unit_rows(3000, dimension, seed=13)
    batch = records(vectors)
    store.upsert(batch)
    allowed = [i for i in range(3000) if i % 3]  # 2,000 ids
    ids = [batch[i].file_meta_id for i in allowed]
    for query in unit_rows(5, dimension, seed=14):
        hits = store.search(query, index_set_id="set-a", top_k=50, file_meta_ids=ids)
        order, scores = exact(vectors[allowed], query, 50)
        assert [h.file_meta_id for h in hits] == [ids[i] for i in order]
        np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-4)


def test_bad_input_is_an_input_error(backend: Backend) -> None:
    store = backend.make(DIM)
    store.upsert(records(unit_rows(2, DIM)))
    with pytest.raises(AdapterError) as wrong_size:
        store.search(np.ones(DIM + 1), index_set_id="set-a", top_k=3)
    with pytest.raises(AdapterError) as zero_k:
        store.search(unit_rows(1, DIM)[0], index_set_id="set-a", top_k=0)
    with pytest.raises(AdapterError) as zero_vector:
        store.upsert(records(np.zeros((1, DIM), dtype=np.float32)))
    with pytest.raises(AdapterError) as ragged:
        store.upsert(records(unit_rows(1, DIM)) + records(unit_rows(1, DIM + 1), prefix="x-"))
    for err in (wrong_size, zero_k, zero_vector, ragged):
        assert err.value.is_input_error and not err.value.retriable


def test_unnormalised_vectors_are_normalised(backend: Backend) -> None:
    store = backend.make(DIM)
    vectors = unit_rows(20, DIM, seed=12)
    store.upsert(records(vectors * 3.0))
    hits = store.search(vectors[4] * 0.5, index_set_id="set-a", top_k=1)
    assert hits[0].file_meta_id == "dfm-00004"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
