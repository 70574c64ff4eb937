"""SearchService on both SQL engines: exact vector results at every selectivity, paging, errors.

The expected answers come from the oracle evaluator and brute force (``search_data.exact``);
the vector store is the exact numpy index, and Milvus Lite and pgvector for real in the last
tests.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from mmdm.adapters import search
from mmdm.adapters.errors import ConfigError, NotFoundError
from mmdm.adapters.metadata import FileMeta, open_store
from mmdm.adapters.models.local import LocalImageEmbedder
from mmdm.adapters.search import SearchPage, SearchService
from mmdm.adapters.vectors.pgvector import AnnIndex, PgVectorStore
from mmdm.query import DslSemanticError, UnsupportedFeatureError, parse, planner, select_rows
from tests.conftest import throwaway_database
from tests.fakes.numpy_vectors import NumpyVectorStore

from . import search_data as data

LIMITS = planner.Limits(id_batch=500, small=1_000, first_fetch=20, joined_exact=500)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[data.Loaded]:
    folder = tmp_path_factory.mktemp("search")
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{folder / 'meta.db'}")
        yield data.load(store, folder)
        store.close()
        return
    admin = request.getfixturevalue("pg_admin_dsn")
    name = f"mmdm_search_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    store = open_store(admin.rsplit("/", 1)[0] + "/" + name)
    yield data.load(store, folder)
    store.close()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def numpy_index(loaded: data.Loaded) -> NumpyVectorStore:
    return data.fill(NumpyVectorStore(data.DIM), loaded.dataset_id, loaded.metas)


def service(loaded: data.Loaded, vectors: Any) -> SearchService:
    return SearchService(loaded.store, vector_store=vectors, embedder=data.FakeEmbedder(),
                         limits=LIMITS, index_set_id=data.INDEX_SET)


def all_pages(svc: SearchService, loaded: data.Loaded, text: str,
              **kw: object) -> tuple[list[SearchPage], list[tuple[str, float | None]]]:
    pages, token = [], None
    while True:
        query = parse(text + (f" AND NextToken='{token}'" if token else ""))
        page = svc.search(loaded.dataset_id, "v1", query, **kw)  # type: ignore[arg-type]
        pages.append(page)
        token = page.next_token
        if token is None:
            items = [(m.file_meta_id, s) for p in pages for m, s in p.items]
            return pages, items


def pages_from(svc: SearchService, loaded: data.Loaded, text: str, token: str | None
               ) -> list[str]:
    """The ids of every page from ``token`` on."""
    ids: list[str] = []
    while token:
        page = svc.search(loaded.dataset_id, "v1", parse(f"{text} AND NextToken='{token}'"))
        ids += [m.file_meta_id for m, _ in page.items]
        token = page.next_token
    return ids


@pytest.mark.parametrize("matches", [2, 30, 600, 1_500, 3_000])
@pytest.mark.parametrize(("top_k", "threshold"), [(5, None), (150, 0.1)])
def test_vector_results_equal_exact_search(loaded: data.Loaded, numpy_index: NumpyVectorStore,
                                           matches: int, top_k: int,
                                           threshold: float | None) -> None:
    text = f"Content:'red car' AND DataSize < {matches} AND TopK={top_k} AND MaxResults=40"
    if threshold is not None:
        text += f" AND ScoreThreshold={threshold}"
    numpy_index.calls.clear()
    pages, items = all_pages(service(loaded, numpy_index), loaded, text)
    want = data.exact(loaded, parse(text), data.text_vector("red car"), top_k, threshold)
    assert [i for i, _ in items] == [i for i, _ in want], pages[0].plan
    assert [s for _, s in items] == pytest.approx([s for _, s in want], abs=1e-5)
    assert {p.total_count for p in pages} == {len(want)}
    assert all(c.ids is None or c.ids <= LIMITS.id_batch for c in numpy_index.calls)
    assert ("ids:" if matches <= LIMITS.small else "over-fetch") in pages[0].plan


def test_vector_filter_sees_tags_and_status(loaded: data.Loaded,
                                            numpy_index: NumpyVectorStore) -> None:
    text = "Content:'boat' AND QueryType='VECTOR' AND Tags.all='mod7-3' AND TopK=40"
    _, items = all_pages(service(loaded, numpy_index), loaded, text)
    want = data.exact(loaded, parse(text), data.text_vector("boat"), 40, None)
    assert [i for i, _ in items] == [i for i, _ in want]
    assert all(int(i[5:]) % 7 == 3 and int(i[5:]) % 50 for i, _ in items)


def test_image_queries_find_the_image_itself(loaded: data.Loaded,
                                             numpy_index: NumpyVectorStore) -> None:
    svc = service(loaded, numpy_index)
    uri = (loaded.folder / "img7.jpg").as_uri()
    page = svc.search(loaded.dataset_id, "v1", parse(f"QueryImage='{uri}' AND TopK=3"))
    assert page.items[0][0].file_meta_id == "file-00007"
    assert page.items[0][1] == pytest.approx(1.0, abs=1e-5)
    page = svc.search(loaded.dataset_id, "v1", parse("TopK=3"), query_image=b"vec:9")
    assert page.items[0][0].file_meta_id == "file-00009"


def test_sort_by_reorders_the_ranked_list(loaded: data.Loaded,
                                          numpy_index: NumpyVectorStore) -> None:
    base = "Content:'x' AND TopK=30 AND MaxResults=7"
    _, ranked = all_pages(service(loaded, numpy_index), loaded, base)
    _, by_time = all_pages(service(loaded, numpy_index), loaded,
                           base + " AND SortBy='FileCreateTime' AND Order='ASC'")
    assert sorted(ranked) == sorted(by_time)
    assert [i for i, _ in by_time] == sorted((i for i, _ in ranked), reverse=True)


@pytest.mark.parametrize("options", [
    "", " AND SortBy='FileUpdateTime'", " AND SortBy='FileUpdateTime' AND Order='ASC'",
    " AND SortBy='FileCreateTime' AND Order='DESC'", " AND SortBy='FileCreateTime' AND Order='ASC'",
])
@pytest.mark.parametrize(("walk_ms_per_row", "shape"), [
    (0.0, "walking the key order"), (1e9, "sorting the matches")])
def test_tag_pages_add_up_to_one_unpaged_query(loaded: data.Loaded, options: str,
                                               walk_ms_per_row: float, shape: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Either page shape, chosen on the first page and kept by every later one, lists the same.
    monkeypatch.setattr(search, "WALK_MS_PER_ROW", walk_ms_per_row)
    if walk_ms_per_row == 0.0:  # walking always: not even a cheap sort for the kept keys
        monkeypatch.setattr(search, "CHEAP_SORT_MS", -1.0)
    svc = SearchService(loaded.store)
    text = "Tags.all='mod7-2' AND DataSize < 1000" + options
    pages, items = all_pages(svc, loaded, text + " AND MaxResults=13")
    assert all(shape in p.plan for p in pages)
    unpaged = [m.file_meta_id for m, _ in svc.iter_matches(loaded.dataset_id, "v1", parse(text))]
    assert [i for i, _ in items] == unpaged and all(s is None for _, s in items)
    records = [m.to_record() for m in loaded.metas]
    assert set(unpaged) == {r["DatasetFileMetaId"] for r in select_rows(parse(text), records)}
    assert {p.total_count for p in pages} == {len(unpaged)} and len(pages) == -(-len(unpaged) // 13)
    if "SortBy" in options:
        column = "file_update_time" if "Update" in options else "file_create_time"
        by_id = {m.file_meta_id: getattr(m, column) or -1 for m in loaded.metas}
        keys = [by_id[i] for i in unpaged]
        assert keys == sorted(keys, reverse="ASC" not in options)


@pytest.mark.parametrize("options", ["", " AND SortBy='FileUpdateTime' AND Order='ASC'"])
def test_later_pages_of_a_sorted_listing_are_slices_of_the_keys_its_first_page_collected(
        loaded: data.Loaded, options: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sorting pays for rare matches; a later page then slices the sorted keys the first page
    collected instead of sorting every match again. The pages equal an unpaged listing; a
    token whose list this process no longer holds resumes in SQL with the same pages."""
    monkeypatch.setattr(search, "WALK_MS_PER_ROW", 1e9)  # sorting the matches always pays
    text = "Tags.all='mod7-2' AND DataSize < 1000" + options
    svc = SearchService(loaded.store)
    unpaged = [m.file_meta_id for m, _ in svc.iter_matches(loaded.dataset_id, "v1", parse(text))]
    statements: list[str] = []
    real_sql = svc._sql
    monkeypatch.setattr(svc, "_sql", lambda *a, **kw: statements.append(repr(kw)) or
                        real_sql(*a, **kw))
    monkeypatch.setattr(search, "_SORTED_KEYS", search.LruCache(32))  # process-wide: a new one
    pages, items = all_pages(svc, loaded, text + " AND MaxResults=13")
    assert [i for i, _ in items] == unpaged and len(pages) == -(-len(unpaged) // 13) > 2
    assert all("slice of the" in p.plan for p in pages)
    first_page_statements = 2  # the count, the keys
    assert len(statements) == first_page_statements + 1  # and past the list's end, once
    # The lists are gone (another replica, or expired): the same tokens resume in SQL.
    monkeypatch.setattr(search, "_SORTED_KEYS", search.LruCache(32))
    again = pages_from(svc, loaded, text + " AND MaxResults=13", pages[0].next_token)
    assert [i for i, _ in items[13:]] == again


def test_a_file_deleted_while_a_sorted_listing_is_paged_drops_out_of_it(
        loaded: data.Loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "WALK_MS_PER_ROW", 1e9)
    svc = SearchService(loaded.store)
    text = "Tags.all='mod7-2' AND DataSize < 1000 AND MaxResults=13"
    first = svc.search(loaded.dataset_id, "v1", parse(text))
    rest = pages_from(svc, loaded, text, first.next_token)
    gone = rest[3]
    loaded.store.execute("UPDATE file_metas SET status = 'DELETED' WHERE file_meta_id = ?",
                         (gone,))
    try:
        after = pages_from(svc, loaded, text, first.next_token)
    finally:
        loaded.store.execute("UPDATE file_metas SET status = 'ACTIVE' WHERE file_meta_id = ?",
                             (gone,))
    assert after == [i for i in rest if i != gone]


@pytest.mark.parametrize(("matches", "count_ms", "keeps"), [
    (9_000, 8.0, True),       # a 1 % folder of 1M files: sorted once, later pages sliced
    (90_000, 10.0, False),    # 45 ms of keys to send: the first page would wait for them
    (9_000, 60.0, False),     # a slow count: the sort would cost as much again
    (100, 1.0, False),        # one page: nothing to keep
    (200_000, 1.0, False),    # too many keys to keep
])
def test_keeping_sorted_keys_pays_for_cheap_sorts_of_several_pages(
        matches: int, count_ms: float, keeps: bool) -> None:
    assert search.keeping_sorted_keys_pays(matches, count_ms, 100) is keeps


@pytest.mark.parametrize(("rows", "matches", "count_ms", "sorts"), [
    (10_000_000, 7_000, 10.0, True),     # rare matches, cheap count: walking reads ~144k rows
    (10_000_000, 7_000, 400.0, False),   # a count that cost more than that walk
    (10_000_000, 4_000_000, 5.0, False),  # dense matches: the walk fills a page at once
    (1_000, 0, 0.5, True),               # no match: a walk reads every row
    (50, 10, 0.2, False),                # tiny version: the walk is at most 50 rows
])
def test_sorting_pays_compares_the_count_with_the_walk(rows: int, matches: int,
                                                       count_ms: float, sorts: bool) -> None:
    assert search.sorting_pays(rows, matches, count_ms, 100) is sorts


def test_key_span_bounds_the_versions_rows(loaded: data.Loaded) -> None:
    store = loaded.store
    active = store.count_file_metas(loaded.dataset_id, "v1")
    assert active <= store.key_span(loaded.dataset_id, "v1") <= len(loaded.metas)
    assert store.key_span(loaded.dataset_id, "no-such-version") == 0


def test_a_full_last_page_ends_the_listing(loaded: data.Loaded) -> None:
    pages, items = all_pages(SearchService(loaded.store), loaded,
                             "DataSize < 100 AND MaxResults=14")  # 98 ACTIVE files: 7 pages
    assert len(items) == 98 and [len(p.items) for p in pages] == [14] * 7


def test_a_listing_is_compiled_once_and_later_pages_only_bind_the_cursor(
        loaded: data.Loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "_COMPILED", search.LruCache(64))
    monkeypatch.setattr(search, "WALK_MS_PER_ROW", 0.0)  # the same page shape every time
    calls: list[bool] = []
    compile_sql = search.compile_sql
    monkeypatch.setattr(search, "compile_sql", lambda *a, **kw: (
        calls.append(bool(kw.get("count"))), compile_sql(*a, **kw))[1])
    text = "DataSize < 100 AND SortBy='FileUpdateTime' AND Order='{}' AND MaxResults=14"
    _, first = all_pages(SearchService(loaded.store), loaded, text.format("ASC"))
    assert sorted(calls) == [False, False, True]  # the count, page 1, the later pages
    _, again = all_pages(SearchService(loaded.store), loaded, text.format("ASC"))
    assert again == first and len(calls) == 3  # another service (thread): nothing compiled
    _, desc = all_pages(SearchService(loaded.store), loaded, text.format("DESC"))
    assert len(calls) == 6  # another query

    records = [m.to_record() for m in loaded.metas]
    by_id = {m.file_meta_id: (m.file_update_time or -1, m.file_meta_id) for m in loaded.metas}
    expected = sorted((r["DatasetFileMetaId"] for r in select_rows(parse(text.format("ASC")),
                                                                   records)), key=by_id.get)
    assert len(expected) == 98
    assert [i for i, _ in first] == expected and [i for i, _ in desc] == expected[::-1]


def test_later_pages_carry_the_first_pages_total(loaded: data.Loaded) -> None:
    svc = SearchService(loaded.store)
    first = svc.search(loaded.dataset_id, "v1", parse("DataSize < 60 AND MaxResults=50"))
    assert first.total_count == 58 and first.next_token
    # Not recounted on page 2: a match that appears in between is listed, the total stays.
    extra = data.meta(20_001, loaded.dataset_id, loaded.folder)
    loaded.store.upsert_file_metas([FileMeta(**{**extra.__dict__, "data_size": 5})])
    try:
        second = svc.search(loaded.dataset_id, "v1", parse(
            f"DataSize < 60 AND MaxResults=50 AND NextToken='{first.next_token}'"))
    finally:
        loaded.store.execute("DELETE FROM file_metas WHERE file_meta_id = ?",
                             (extra.file_meta_id,))
    assert second.total_count == 58 and len(second.items) == 9


def test_mix_without_semantic_part_is_a_tag_listing(loaded: data.Loaded) -> None:
    page = SearchService(loaded.store).search(loaded.dataset_id, "v1",
                                              parse("QueryType='MIX' AND DataSize < 3"))
    assert [(m.file_meta_id, s) for m, s in page.items] == [("file-00001", None),
                                                            ("file-00002", None)]
    assert page.plan.startswith("TAG plan: MIX without a semantic part")


def test_tampered_or_foreign_tokens_are_clear_errors(loaded: data.Loaded,
                                                     numpy_index: NumpyVectorStore) -> None:
    svc = service(loaded, numpy_index)
    tag = svc.search(loaded.dataset_id, "v1", parse("DataSize < 100 AND MaxResults=5"))
    vec = svc.search(loaded.dataset_id, "v1", parse("Content:'a' AND TopK=20 AND MaxResults=5"))
    assert tag.next_token and vec.next_token
    cases = [("DataSize < 100", tag.next_token[:-2] + "xy"), ("DataSize < 101", tag.next_token),
             ("Content:'a' AND TopK=20", tag.next_token), ("DataSize < 100", vec.next_token),
             ("DataSize < 100", "bm90IGEgdG9rZW4")]
    for text, token in cases:
        with pytest.raises(DslSemanticError) as info:
            svc.search(loaded.dataset_id, "v1", parse(f"{text} AND NextToken='{token}'"))
        assert info.value.code == "bad-next-token", (text, token)


def _forged(payload: dict, key: bytes | None) -> str:
    """A token built outside the service: signed with ``key``, or with the plain SHA-256
    checksum anyone can compute when ``key`` is None."""
    import hashlib
    import hmac

    text = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    sig = (hmac.new(key, text, hashlib.sha256) if key else hashlib.sha256(text)).hexdigest()
    raw = json.dumps({**payload, "s": sig[:32]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_next_tokens_cannot_be_forged_and_bad_cursors_are_refused(
        loaded: data.Loaded, numpy_index: NumpyVectorStore) -> None:
    """Only the service can issue a cursor: a token with a public checksum or another key is
    refused, and a cursor the service never makes (negative offset or total, a huge total) is
    refused even when signed with the service's own key."""
    from mmdm.query.paging import fingerprint

    svc = service(loaded, numpy_index)
    tag_q, vec_q = "DataSize < 100 AND MaxResults=5", "Content:'a' AND TopK=20 AND MaxResults=5"
    tag_fp = fingerprint(parse(tag_q), loaded.dataset_id, "v1")
    first = svc.search(loaded.dataset_id, "v1", parse(tag_q))
    real = first.next_token
    assert svc.search(loaded.dataset_id, "v1", parse(f"{tag_q} AND NextToken='{real}'")).items

    def refused(query: str, token: str) -> None:
        with pytest.raises(DslSemanticError) as info:
            svc.search(loaded.dataset_id, "v1", parse(f"{query} AND NextToken='{token}'"))
        assert info.value.code == "bad-next-token", token

    cursor = {"k": 1, "n": 10**12, "s": False}  # would be echoed as TotalCount
    payload = {"v": 1, "m": "tag", "q": tag_fp, "c": cursor}
    refused(tag_q, _forged(payload, None))
    refused(tag_q, _forged(payload, b"another service's key"))
    key = svc.token_key
    for bad in ({"k": 1, "n": -5, "s": False}, {"k": "1", "n": 5, "s": False},
                {"k": 1, "n": 5, "s": "yes"}, {"k": 1, "n": 5, "s": True, "o": -3},
                {"k": 1, "n": 5, "s": True, "o": "2"}):
        refused(tag_q, _forged({**payload, "c": bad}, key))
    vec = svc.search(loaded.dataset_id, "v1", parse(vec_q))
    vec_fp = json.loads(base64.urlsafe_b64decode(vec.next_token + "=="))["q"]
    for offset in (-5, 1.5, "5"):
        refused(vec_q, _forged({"v": 1, "m": "vector", "q": vec_fp, "c": offset}, key))
    # Another SearchService over the same store (another process, another replica) shares the
    # key: its tokens are good here.
    other = service(loaded, numpy_index).search(loaded.dataset_id, "v1", parse(tag_q))
    assert svc.search(loaded.dataset_id, "v1",
                      parse(f"{tag_q} AND NextToken='{other.next_token}'")).items


def test_iter_matches_with_threshold_has_no_top_k_cap(loaded: data.Loaded,
                                                      numpy_index: NumpyVectorStore) -> None:
    text = "Content:'tree' AND ScoreThreshold=0.3 AND NOT Tags.all='mod7-1'"
    got = list(service(loaded, numpy_index).iter_matches(loaded.dataset_id, "v1", parse(text),
                                                         page_size=50))
    want = data.exact(loaded, parse(text), data.text_vector("tree"), None, 0.3)
    assert len(want) > 100  # far beyond the default TopK
    assert sorted(m.file_meta_id for m, _ in got) == sorted(i for i, _ in want)


def test_explain_says_what_ran(loaded: data.Loaded, numpy_index: NumpyVectorStore) -> None:
    text = service(loaded, numpy_index).explain(
        loaded.dataset_id, "v1", parse("Content:'a' AND DataSize < 2000 AND TopK=10"))
    assert "VECTOR plan: QueryType=MIX" in text and "filter matches: 1001 or more" in text
    assert "over-fetch" in text and "round 1: top 20" in text and "results: 10" in text


def test_text_query_on_an_image_only_model_is_refused(loaded: data.Loaded,
                                                      numpy_index: NumpyVectorStore) -> None:
    svc = SearchService(loaded.store, vector_store=numpy_index,  # type: ignore[arg-type]
                        embedder=LocalImageEmbedder(data.DIM), index_set_id=data.INDEX_SET)
    with pytest.raises(UnsupportedFeatureError, match="embeds images only") as info:
        svc.search(loaded.dataset_id, "v1", parse("Content:'a red car'"))
    assert info.value.code == "no-text-embedding"


def test_query_type_errors(loaded: data.Loaded) -> None:
    svc = SearchService(loaded.store)
    with pytest.raises(DslSemanticError, match="QueryType=VECTOR needs"):
        svc.search(loaded.dataset_id, "v1", parse("QueryType='VECTOR'"))
    with pytest.raises(ConfigError, match="needs a vector store"):
        svc.search(loaded.dataset_id, "v1", parse("Content:'a'"))


def test_index_set_comes_from_the_latest_successful_index_job(tmp_path, frozen_clock) -> None:
    """Latest by creation, even for jobs made in one millisecond."""
    store = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    ds = store.create_dataset("idx", tmp_path.as_uri())
    store.create_version(ds.dataset_id)
    svc = SearchService(store, vector_store=NumpyVectorStore(data.DIM),  # type: ignore[arg-type]
                        embedder=data.FakeEmbedder())
    with pytest.raises(NotFoundError, match="no successful SemanticIndex job"):
        svc.index_set_for(ds.dataset_id, "v1")
    data.index_job(store, ds.dataset_id, indexSetId="old")
    data.index_job(store, ds.dataset_id, indexSetId="new", status="PartialFailed")
    data.index_job(store, ds.dataset_id, indexSetId="broken", status="Failed")
    assert svc.index_set_for(ds.dataset_id, "v1") == "new"
    data.index_job(store, ds.dataset_id, indexSetId="other", embeddingModel="qwen")
    with pytest.raises(ConfigError, match="embeddingModel='qwen'"):
        svc.index_set_for(ds.dataset_id, "v1")
    store.close()


# -- Milvus Lite for real -----------------------------------------------------------------


@pytest.fixture(scope="module")
def milvus_index(loaded: data.Loaded, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("milvus_lite")
    from mmdm.adapters.vectors.milvus import MilvusVectorStore

    path = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    store = data.fill(MilvusVectorStore(path, "search_test", data.DIM, index_type="FLAT"),
                      loaded.dataset_id, loaded.metas)
    yield store
    store.close()


@pytest.mark.parametrize("text", [
    "Content:'red car' AND DataSize < 30 AND TopK=10",
    "Content:'red car' AND DataSize >= 200 AND TopK=25 AND ScoreThreshold=0.2",
    "QueryType='VECTOR' AND Content:'dog' AND NOT Tags.all='even' AND TopK=60",
])
def test_milvus_lite_agrees_with_exact_search(loaded: data.Loaded, milvus_index, text: str) -> None:
    _, items = all_pages(service(loaded, milvus_index), loaded, text + " AND MaxResults=100")
    semantic = parse(text).semantic
    assert semantic is not None and semantic.text is not None
    query = parse(text)
    want = data.exact(loaded, query, data.text_vector(semantic.text),
                      int(query.option("TopK") or 10), query.option("ScoreThreshold"))
    assert [i for i, _ in items] == [i for i, _ in want]


def test_milvus_lite_takes_the_pushed_down_filter(loaded: data.Loaded, milvus_index) -> None:
    """Over 1000 matches with an id list in the filter: Milvus gets it as its own expression."""
    ids = " OR ".join(f"DatasetFileMetaId='{data.file_id(i)}'" for i in range(0, 2400, 2))
    text = f"Content:'sun' AND ({ids}) AND Tags.all='even' AND TopK=15 AND MaxResults=20"
    page = service(loaded, milvus_index).search(loaded.dataset_id, "v1", parse(text))
    # The same files, said in a way the oracle evaluates quickly.
    same = parse("Tags.all='even' AND DataSize < 2400")
    want = data.exact(loaded, same, data.text_vector("sun"), 15, None)
    assert [m.file_meta_id for m, _ in page.items] == [i for i, _ in want]
    assert "the pushable filter" in page.plan


# -- pgvector on the embedded PostgreSQL: the whole filter joined in SQL ----------------------


@pytest.fixture(scope="module")
def pg_loaded(pgvector_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[data.Loaded]:
    with throwaway_database(pgvector_admin_dsn, "mmdm_search") as dsn:
        store = open_store(dsn)
        yield data.load(store, tmp_path_factory.mktemp("pgsearch"))
        store.close()


@pytest.fixture(scope="module", params=["ivfflat", "hnsw"])
def pgvector_index(pg_loaded: data.Loaded, request: pytest.FixtureRequest) -> PgVectorStore:
    # IVFFlat probing every list it has is exact, so its answers must equal brute force; HNSW
    # is approximate even here, so it is held to a recall floor.
    ann = AnnIndex(kind=request.param, min_rows=1, rows_per_list=100, probes=64, max_probes=64)
    store = PgVectorStore(pg_loaded.store, f"search_{request.param}", data.DIM, ann=ann)
    data.fill(store, pg_loaded.dataset_id, pg_loaded.metas)
    assert store.build_index() == f"{request.param} index over {data.N - data.N // 50} rows"
    return store


@pytest.mark.parametrize("matches", [2, 30, 600, 1_500, 3_000])
@pytest.mark.parametrize(("top_k", "threshold"), [(5, None), (150, 0.1)])
def test_pgvector_joins_the_filter_and_agrees_with_exact_search(
        pg_loaded: data.Loaded, pgvector_index: PgVectorStore, matches: int, top_k: int,
        threshold: float | None) -> None:
    text = (f"Content:'red car' AND DataSize < {matches} AND NOT Tags.all='mod7-2' "
            f"AND TopK={top_k} AND MaxResults=40")
    if threshold is not None:
        text += f" AND ScoreThreshold={threshold}"
    pages, items = all_pages(service(pg_loaded, pgvector_index), pg_loaded, text)
    want = data.exact(pg_loaded, parse(text), data.text_vector("red car"), top_k, threshold)
    exact = matches <= LIMITS.joined_exact
    assert ("sql, exact" if exact else "sql, ann") in pages[0].plan
    wanted = {i for i, _ in want}
    assert {i for i, _ in items} <= {m.file_meta_id for m in pg_loaded.metas
                                     if m.file_meta_id in wanted or not exact}
    scores = [s for _, s in items]
    assert scores == sorted(scores, reverse=True)
    if exact or pgvector_index.ann.kind == "ivfflat":
        assert [i for i, _ in items] == [i for i, _ in want], pages[0].plan
        assert scores == pytest.approx([s for _, s in want], abs=1e-5)
    else:
        assert len(items) == len(want)
        assert len({i for i, _ in items} & wanted) >= 0.9 * len(want)
    matching = {r["DatasetFileMetaId"] for r in select_rows(parse(text), [
        m.to_record() for m in pg_loaded.metas])}
    assert {i for i, _ in items} <= matching  # never a file outside the filter


def test_pgvector_without_an_ann_index_stays_exact(pg_loaded: data.Loaded) -> None:
    store = PgVectorStore(pg_loaded.store, "search_noann", data.DIM, ann=AnnIndex(kind="none"))
    data.fill(store, pg_loaded.dataset_id, pg_loaded.metas)
    assert store.build_index() is None
    text = "Content:'kite' AND DataSize >= 100 AND TopK=30"
    _, items = all_pages(service(pg_loaded, store), pg_loaded, text)
    want = data.exact(pg_loaded, parse(text), data.text_vector("kite"), 30, None)
    assert [i for i, _ in items] == [i for i, _ in want]
