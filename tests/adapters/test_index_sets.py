"""Index sets per version: one version indexed twice (two models, two tables) and a second
dataset on a third; each is searchable by name, the newest is the default, and a text query
against an image-only model is a clear refusal."""

from __future__ import annotations

import pytest

from mmdm.adapters.errors import NotFoundError
from mmdm.adapters.index_sets import find_index_set, index_sets
from mmdm.adapters.jobs import run_index_job
from mmdm.adapters.metadata import open_store
from mmdm.adapters.models import DashScopeEmbedder, LocalImageEmbedder
from mmdm.adapters.search import SearchService
from mmdm.adapters.vectors.pgvector import PgVectorStore
from mmdm.query import UnsupportedFeatureError, parse
from tests.jobs.conftest import make_version


@pytest.fixture
def indexed(pgvector_dsn, fake_dashscope, tmp_path):
    store = open_store(pgvector_dsn)
    first = make_version(store, tmp_path / "a", 12)
    local = LocalImageEmbedder()
    dashscope = DashScopeEmbedder(api_key=fake_dashscope.api_key,
                                  base_url=fake_dashscope.base_url,
                                  model="tongyi-embedding-vision-plus", dimension=64)
    by_model = {}
    for embedder, table in ((local, "vec_local"), (dashscope, "vec_dashscope")):
        vectors = PgVectorStore(store, table, embedder.dimension)
        run_index_job(store, first, "v1", embedder=embedder, vector_store=vectors)
        by_model[embedder.model] = (embedder, vectors)
    second = store.create_dataset("second", (tmp_path / "a").as_uri()).dataset_id
    store.create_version(second)
    from mmdm.adapters.scan import build_file_metas

    build_file_metas(store, second, "v1")
    run_index_job(store, second, "v1", embedder=local,
                  vector_store=PgVectorStore(store, "vec_second", local.dimension))
    by_model["local-second"] = (local, PgVectorStore(store, "vec_second", local.dimension))

    def opener(index):
        key = "local-second" if index.table == "vec_second" else index.embedding_model
        return by_model[key]

    yield store, first, second, SearchService(store, index_opener=opener)
    store.close()


def test_a_version_indexed_twice_has_two_index_sets_newest_first(indexed):
    store, first, second, _ = indexed
    sets = index_sets(store, first, "v1")
    assert [(s.embedding_model, s.table) for s in sets] == [
        ("tongyi-embedding-vision-plus", "vec_dashscope"), (LocalImageEmbedder().model, "vec_local")]
    assert [s.dimension for s in sets] == [64, LocalImageEmbedder().dimension]
    assert find_index_set(store, first, "v1").index_set_id == sets[0].index_set_id
    assert [s.table for s in index_sets(store, second, "v1")] == ["vec_second"]
    with pytest.raises(NotFoundError, match="has no index set 'nope'.*" + sets[1].index_set_id):
        find_index_set(store, first, "v1", "nope")


def test_each_index_set_is_searchable_by_name(indexed):
    store, first, second, search = indexed
    local, remote = index_sets(store, first, "v1")[::-1]
    probe = next(store.iter_file_metas(first, "v1"))
    image = parse(f"QueryImage='{probe.uri}' AND TopK=3")
    for index in (local, remote):
        page = search.search(first, "v1", image, index_set_id=index.index_set_id)
        assert page.items[0][0].file_meta_id == probe.file_meta_id
        assert page.items[0][1] == pytest.approx(1.0, abs=1e-4)
        assert index.index_set_id in page.plan
    text = search.search(first, "v1", parse("Content:'a blue car' AND TopK=5"))  # the default
    assert len(text.items) == 5 and remote.index_set_id in text.plan
    other = search.search(second, "v1", parse(f"QueryImage='{probe.uri}' AND TopK=2"))
    assert other.items[0][0].dataset_id == second and other.items[0][1] == pytest.approx(1.0,
                                                                                      abs=1e-4)


def test_text_against_an_image_only_index_is_refused_with_the_reason(indexed):
    store, first, _, search = indexed
    local = index_sets(store, first, "v1")[1]
    with pytest.raises(UnsupportedFeatureError) as err:
        search.search(first, "v1", parse("Content:'a blue car'"), index_set_id=local.index_set_id)
    assert err.value.code == "no-text-embedding" and "images only" in err.value.message
    described = search.describe_index_sets(first, "v1")
    assert [(d["IndexSetId"], d["IsDefault"], d["SupportsText"]) for d in described] == [
        (index_sets(store, first, "v1")[0].index_set_id, True, True),
        (local.index_set_id, False, False)]
