"""ListDatasetFileMetas as a service: a Query over the metadata store and a vector index set.

TAG queries are SQL pages with keyset paging. VECTOR and MIX queries embed the query text or
image and rank the filter's matches by similarity through ``mmdm.query.planner``; pages are slices
of the ranked TopK list. Scoring (PAI leaves MIX open): a hit's score is the similarity of its
vector to the query vector (dot product of unit vectors, i.e. cosine); the filter is a hard
condition and adds nothing to the score. ``SortBy`` reorders the ranked list by time.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from mmdm.query import Query, compile_sql, planner
from mmdm.query.compile.sql import (
    NULL_SORT_KEY,
    CompiledSql,
    select_columns,
    sort_column,
    with_cursor,
)
from mmdm.query.errors import DslSemanticError
from mmdm.query.paging import (
    decode_token,
    encode_token,
    fingerprint,
    fingerprint_of,
    query_key,
)

from .errors import AdapterError, ConfigError, NotFoundError
from .index_sets import IndexSet, find_index_set, index_sets
from .jobs.common import ImageLoader
from .metadata import FileMeta, MetadataStore
from .metadata.store import database_errors
from .metadata.model import FILE_META_COLUMNS
from .models.base import Embedder
from .search_sources import (
    SqlFilter,
    StoreVectors,
    joined_filter,
    query_file_input,
    query_vector,
)
from .storage import OssConfig
from .vectors.base import VectorStore

IndexOpener = Callable[[IndexSet], tuple[Embedder, VectorStore]]
DEFAULT_TOP_K = 10  # PAI's TopK default
DEFAULT_MAX_RESULTS = 10  # PAI's MaxResults default
# On PostgreSQL a TAG listing counts its matches exactly up to this many; past it TotalCount is
# the planner's estimate (never below what was counted), flagged, unless an exact count is
# asked for: counting a broad filter over millions of rows costs seconds on every search.
EXACT_COUNT_UP_TO = 10_000
# It counts this many first: past them, a filter the planner expects EXACT_COUNT_UP_TO matches
# or more for answers the estimate at once (finding 10,000 sparse matches scanned for 100-200
# ms at 1M-10M files, bench/dsl.py); one it expects fewer for is counted on to the bound, since
# its estimate may be far off (substring filters were 10x under).
QUICK_COUNT_UP_TO = 1_000
# Walking the key order tests about a row a microsecond (PostgreSQL and SQLite, bench/dsl.py).
WALK_MS_PER_ROW = 0.001
# Listings count at most this many matches before choosing how to page (exports: no TotalCount).
SHAPE_COUNT_LIMIT = 20_000


@dataclass(frozen=True)
class SearchPage:
    """One page: ``items`` are ``(meta, score)``; score is None for TAG listings.

    ``total_count`` is every match for TAG listings (counted on the first page and carried in
    NextToken, so paging does not recount), and the ranked list's length for vector queries.
    ``total_is_estimate``: the count passed ``EXACT_COUNT_UP_TO`` and is the planner's figure.
    """

    items: list[tuple[FileMeta, float | None]]
    total_count: int
    next_token: str | None
    max_results: int
    plan: str
    total_is_estimate: bool = False


@dataclass(frozen=True)
class _Index:
    """What a vector query's ranking depends on besides the query: its image and index set."""

    upload: bytes | None
    set_id: str | None

    def digest(self) -> str:
        return _digest(self.upload) + (f":{self.set_id}" if self.set_id else "")


@dataclass(frozen=True)
class _Ranked:
    hits: list[planner.Hit]
    plan: str
    at: float


class LruCache:
    """The ``size`` most recently stored entries; thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: Any, entry: Any) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class RankedCache(LruCache):
    """The ranked lists (``_Ranked``) of recent vector queries, by query fingerprint."""

    def __init__(self, size: int = 32):
        super().__init__(size)


# The SQL of recent listings, shared by every service of the process: a gallery repeats a few
# searches and pages through them, and compiling them (sqlglot) was a sixth of a listing's CPU.
_COMPILED = LruCache(512)

# The keys of recent listings that sort their matches (few of them in a large version), shared
# by the process: a later page is a slice of the list its first page collected, instead of
# collecting and sorting every match again (paging a 9,000-file folder of a 1M-file version to
# its end cost 25 ms a page, bench/paging.py). Lists of up to SORTED_KEYS_UP_TO keys are kept
# (1.6 MB each at most), for as long as a service keeps ranked lists (``cache_s``). Such a
# listing's pages are the files that matched on its first page, less those deleted since, then
# whatever matches after its last key when they end (files written since, in key order).
SORTED_KEYS_UP_TO = 100_000
_SORTED_KEYS = LruCache(32)
# A listing of several pages sorts its matches, to page through the kept keys, when that costs
# its first page at most this much (the count again, plus each key's trip to the client):
# walking the key order for rare matches costs about that on every page (a 1 % folder of 1M
# files: count 25 ms, each walked page 25-30 ms, bench/paging.py).
CHEAP_SORT_MS = 50.0
KEY_MS = 0.0005


@dataclass(frozen=True)
class _SortedKeys:
    """A sorted listing's keys in page order, and their SortBy times when it has one."""

    pks: array
    times: array | None
    at: float

    def keyset(self, i: int) -> Any:
        """The NextToken cursor after the ``i``-th key, as the SQL pages make it."""
        return int(self.pks[i]) if self.times is None else (int(self.times[i]), int(self.pks[i]))


class SearchService:
    """Searches one metadata store, and the vector index sets of its versions.

    A VECTOR/MIX query searches one index set of the version: the one the call names, else
    ``index_set_id``, else the version's default (``mmdm.adapters.index_sets``). With
    ``index_opener`` the service opens the model and vector store each index set was built with;
    without it every index set is searched with the one ``embedder`` and ``vector_store`` given.

    Args:
        store: the metadata store.
        vector_store: where the index sets live, when one store serves all (VECTOR/MIX only).
        embedder: the model that embedded them (VECTOR/MIX only).
        index_set_id: the index set searched when a call names none.
        index_opener: ``IndexSet -> (embedder, vector_store)``, called once per index set.
        oss_config: to read a ``QueryImage`` from OSS.
        limits: where the planner switches strategy.
        cache_s: how long a ranked list is kept for its NextToken pages (re-ranking each page
            would embed the query again).
        ranked: where those lists are kept; services of one server (one per worker thread,
            each on its own connection) share one, so a page finds the lists of the others.
    """

    def __init__(self, store: MetadataStore, *, vector_store: VectorStore | None = None,
                 embedder: Embedder | None = None, index_set_id: str | None = None,
                 index_opener: IndexOpener | None = None,
                 oss_config: OssConfig | None = None, limits: planner.Limits | None = None,
                 cache_s: float = 300.0, ranked: RankedCache | None = None):
        self.store, self.vector_store, self.embedder = store, vector_store, embedder
        self.index_set_id = index_set_id
        self.index_opener = index_opener
        self._opened: dict[str, tuple[Embedder, VectorStore]] = {}
        self.limits = limits or planner.Limits()
        self.loader = ImageLoader(oss_config)
        self.cache_s = cache_s
        self.ranked = ranked or RankedCache()
        self._token_key: bytes | None = None

    @property
    def token_key(self) -> bytes:
        """The key NextTokens are signed with (kept in the metadata store)."""
        if self._token_key is None:
            self._token_key = self.store.secret("next-token")
        return self._token_key

    # -- public API -------------------------------------------------------------------------
    def search(self, dataset_id: str, version: str, query: Query, *,
               query_image: bytes | None = None, index_set_id: str | None = None,
               exact_count: bool = False) -> SearchPage:
        """One page of results (PAI's ListDatasetFileMetas). ``exact_count``: count every
        match of a TAG listing, however many (see ``EXACT_COUNT_UP_TO``).

        Raises:
            QueryError: ``bad-next-token``, ``missing-semantic``, ``no-text-embedding``, ...
            AdapterError: no index set, or a backend failure.
        """
        with database_errors():
            return self._search(dataset_id, version, query, query_image, index_set_id,
                                exact_count)

    def _search(self, dataset_id: str, version: str, query: Query, query_image: bytes | None,
                index_set_id: str | None, exact_count: bool = False) -> SearchPage:
        dataset_id = self._scope(dataset_id, version)
        mode, why = planner.query_mode(query, image_upload=query_image is not None)
        max_results = int(query.option("MaxResults", DEFAULT_MAX_RESULTS))
        plan = planner.Plan(mode, why)
        if mode == "TAG":
            return self._tag_page(dataset_id, version, query, max_results, plan, exact_count)
        index = _Index(query_image, index_set_id)
        return self._vector_page(dataset_id, version, query, index, max_results, plan)

    def _scope(self, dataset_id: str, version: str) -> str:
        """The dataset's id, once its version is known to exist: one lookup when given an id
        (as the API and jobs give), a second to resolve a name."""
        try:
            return self.store.get_version(dataset_id, version).dataset_id
        except NotFoundError:
            dataset_id = self.store.get_dataset(dataset_id).dataset_id
            return self.store.get_version(dataset_id, version).dataset_id

    def explain(self, dataset_id: str, version: str, query: Query, *,
                query_image: bytes | None = None, index_set_id: str | None = None) -> str:
        """Which plan ran and why: filter count, strategy, rounds (runs the search)."""
        return self.search(dataset_id, version, query, query_image=query_image,
                           index_set_id=index_set_id).plan

    def iter_matches(self, dataset_id: str, version: str, query: Query, *,
                     query_image: bytes | None = None, page_size: int = 500,
                     index_set_id: str | None = None,
                     ) -> Iterator[tuple[FileMeta, float | None]]:
        """Every match, streamed in pages. A vector query without TopK has no cap: every
        match above ScoreThreshold (see ``planner.iter_ranked`` for the order)."""
        for row, score in self.iter_match_rows(dataset_id, version, query,
                                               query_image=query_image, page_size=page_size,
                                               index_set_id=index_set_id):
            yield self.store.meta_from_row(row), score

    def iter_match_rows(self, dataset_id: str, version: str, query: Query, *,
                        query_image: bytes | None = None, page_size: int = 500,
                        columns: Sequence[str | exp.Expression] = FILE_META_COLUMNS,
                        index_set_id: str | None = None,
                        ) -> Iterator[tuple[tuple[Any, ...], float | None]]:
        """:meth:`iter_matches` as SQL rows ``(pk, *columns, ...)``, the engine's values as
        they come: exports select a rendered line and decode nothing."""
        with database_errors():
            yield from self._iter_match_rows(dataset_id, version, query, query_image,
                                             page_size, columns, index_set_id)

    def _iter_match_rows(self, dataset_id: str, version: str, query: Query,
                         query_image: bytes | None, page_size: int,
                         columns: Sequence[str | exp.Expression], index_set_id: str | None,
                         ) -> Iterator[tuple[tuple[Any, ...], float | None]]:
        dataset_id = self.store.get_dataset(dataset_id).dataset_id
        mode, why = planner.query_mode(query, image_upload=query_image is not None)
        if mode == "TAG":
            yield from self._iter_tag(dataset_id, version, query, page_size, columns)
            return
        plan = planner.Plan(mode, why)
        index = _Index(query_image, index_set_id)
        hits: Iterable[planner.Hit]
        if query.option("TopK") is not None:
            hits = self._sorted(query, self._rank(dataset_id, version, query, index, plan))
        else:
            src, vectors = self._sources(dataset_id, version, query, index)
            hits = planner.iter_ranked(src, vectors, query, limits=self.limits, plan=plan,
                                       threshold=_threshold(query))
        select_list = select_columns(columns, self.store.dialect)
        for chunk in _chunks(hits, page_size):
            scores = {h.pk: h.score for h in chunk}
            for row in self.store.select_by_pk([h.pk for h in chunk], select_list):
                yield row, scores[row[0]]

    def index_set_for(self, dataset_id: str, version: str) -> str:
        """The index set searched when a call names none: the configured one, or the version's
        default, checked against this service's model and table when it has a fixed one.

        Raises:
            NotFoundError: the version has no successful semantic index.
            ConfigError: the index was built with another model, dimension or table.
        """
        return self.open_index(dataset_id, version)[0]

    def open_index(self, dataset_id: str, version: str, index_set_id: str | None = None,
                   content: str = "file") -> tuple[str, Embedder, VectorStore]:
        """``(index set id, embedder, vector store)`` of the index set a search uses: the
        named one, else the configured one, else the version's newest of ``content``.

        Raises:
            NotFoundError: no successful semantic index (by that id).
            ConfigError: no way to open it (see the class docstring).
        """
        wanted = index_set_id or self.index_set_id
        if self.index_opener is None:
            if self.vector_store is None or self.embedder is None:
                raise ConfigError("a VECTOR or MIX query needs a vector store and an embedding "
                                  "model: configure the dataset's index connections")
            if wanted is not None:
                return wanted, self.embedder, self.vector_store
            index = find_index_set(self.store, dataset_id, version, content=content)
            self._check_spec(index)
            return index.index_set_id, self.embedder, self.vector_store
        index = find_index_set(self.store, dataset_id, version, wanted, content)
        if index.index_set_id not in self._opened:
            self._opened[index.index_set_id] = self.index_opener(index)
        return (index.index_set_id, *self._opened[index.index_set_id])

    def describe_index_sets(self, dataset_id: str, version: str) -> list[dict[str, Any]]:
        """The version's index sets in PAI's casing, the default first, each with whether its
        model embeds text (``SupportsText``) or why it cannot be opened (``Unavailable``)."""
        out = []
        for i, index in enumerate(index_sets(self.store, dataset_id, version)):
            try:
                _, embedder, _ = self.open_index(dataset_id, version, index.index_set_id)
            except AdapterError as exc:
                out.append({**index.to_pai(i == 0), "Unavailable": str(exc)})
                continue
            out.append(index.to_pai(i == 0, bool(getattr(embedder, "supports_text", True))))
        return out

    # -- TAG --------------------------------------------------------------------------------
    def _tag_page(self, dataset_id: str, version: str, query: Query, max_results: int,
                  plan: planner.Plan, exact_count: bool = False) -> SearchPage:
        key = query_key(query, dataset_id, version)
        fp = fingerprint_of(key)
        after, total, sort, estimated, offset = _tag_cursor(query, fp, self.token_key)
        if total is None:  # counted once, on the first page; later pages carry it in the token
            total, estimated, count_ms = self._total(dataset_id, version, query, exact_count,
                                                     key)
            sort = (self._sorting_pays(dataset_id, version, total, count_ms, max_results)
                    or (not estimated and keeping_sorted_keys_pays(total, count_ms,
                                                                   max_results)))
        keys = None
        if sort and not estimated and total <= SORTED_KEYS_UP_TO:
            keys = self._sorted_keys(query, dataset_id, version, key, after, offset)
        cursor: dict[str, Any] | None = None
        pks: list[int] = []
        from_earlier_list = keys is not None and after is not None
        if keys is not None:  # a slice of the listing's sorted keys
            start = 0 if after is None else int(offset or 0)
            pks = [int(k) for k in keys.pks[start:start + max_results]]
            end = start + len(pks)
            if end < len(keys.pks):
                cursor = {"k": keys.keyset(end - 1), "o": end}
            else:  # past the list, what matches after its last key now: files written since
                after = keys.keyset(end - 1) if end else None
        if keys is None or cursor is None:  # keys from SQL, then their rows (sorting whole
            room = max_results - len(pks)   # rows cost more than the second round trip)
            rows = self._sql(query, dataset_id, version, key, limit=room + 1, after=after,
                             sort_matches=sort)
            pks += [r[0] for r in rows[:room]]
            if len(rows) > room:
                cursor = {"k": _keyset(query, rows[room - 1]) if room else after}
        token = None
        if cursor is not None:
            cursor.update({"n": total, "s": sort, "e": estimated})
            token = encode_token("tag", cursor, fp, self.token_key)
        metas = self.store.get_file_metas_by_pk(pks)
        if from_earlier_list:  # the list's files, less those deleted (or restored) since
            scope = str(query.option("Status", "ACTIVE"))
            metas = [m for m in metas if scope in ("ALL", m.status)]
        plan.strategy = f"SQL keyset page{_order_text(query)}, {_shape_text(sort)}"
        if keys is not None:
            plan.notes.append(f"the page is a slice of the {len(keys.pks)} sorted keys its "
                              "first page collected")
        plan.filter_count, plan.results = total, len(metas)
        if estimated:
            plan.notes.append("TotalCount: the planner's estimate (more matches than were "
                              "counted); ask for an exact count to count them all")
        return SearchPage([(m, None) for m in metas], total, token, max_results, plan.explain(),
                          estimated)

    def _sorted_keys(self, query: Query, dataset_id: str, version: str, key: str,
                     after: Any, offset: int | None) -> _SortedKeys | None:
        """The listing's sorted keys: collected on its first page (when there are at most
        ``SORTED_KEYS_UP_TO``), and on a later one the list that page's token was cut from,
        if this process still holds it (else None: the SQL keyset page resumes the listing)."""
        if after is None:
            rows = self._sql(query, dataset_id, version, key, limit=SORTED_KEYS_UP_TO + 1,
                             sort_matches=True)
            if len(rows) > SORTED_KEYS_UP_TO:
                return None
            sorted_by_time = sort_column(query) is not None
            keys = _SortedKeys(array("q", (int(r[0]) for r in rows)),
                               array("q", (int(r[-1]) for r in rows)) if sorted_by_time
                               else None, time.monotonic())
            _SORTED_KEYS.put(key, keys)
            return keys
        keys = _SORTED_KEYS.get(key)
        if (keys is None or time.monotonic() - keys.at > self.cache_s or offset is None
                or not 0 < offset <= len(keys.pks) or keys.keyset(offset - 1) != after):
            return None
        return keys

    def _iter_tag(self, dataset_id: str, version: str, query: Query, page_size: int,
                  columns: Sequence[str | exp.Expression]) -> Iterator[tuple[tuple, None]]:
        # The rows come from the keyset query itself, compiled twice: for the first page and
        # for the rest, which only bind the cursor. Shaped as a search page is, by a count that
        # stops early: past SHAPE_COUNT_LIMIT matches, walking the key order is the answer.
        total, count_ms = self._timed_count(dataset_id, version, query, SHAPE_COUNT_LIMIT + 1)
        sort = total <= SHAPE_COUNT_LIMIT and self._sorting_pays(
            dataset_id, version, total, count_ms, page_size)

        def compiled(after: Any) -> CompiledSql:
            return compile_sql(query, self.store.dialect, dataset_id, version,
                               limit=page_size, after=after, columns=columns, sort_matches=sort)

        statement, later = compiled(None), None
        while rows := self.store.fetchall(statement.sql, statement.params):
            yield from ((r, None) for r in rows)
            if len(rows) < page_size:
                return
            after = _keyset(query, rows[-1])
            later = later or compiled(after)
            statement = with_cursor(later, after)

    def _total(self, dataset_id: str, version: str, query: Query, exact: bool,
               key: str | None = None) -> tuple[int, bool, float]:
        """``(TotalCount, is an estimate, ms counting every match costs)``: exact up to
        ``QUICK_COUNT_UP_TO``, and up to ``EXACT_COUNT_UP_TO`` unless the planner expects at
        least that many (always exact when asked, and on SQLite, whose planner has no row
        estimates); past that the planner's estimate, never below the rows counted.

        Behind an estimate the count stopped early, so its time is scaled up to every match:
        it prices sorting them all (``sorting_pays``). Unscaled, the time of the first 1,001
        made a 1 % folder of 10M files sort its 90k matches on every page: 446 ms a page, where
        walking the key order takes 10-18 ms (bench/paging.py)."""
        if exact or self.store.dialect != "postgres":
            total, ms = self._timed_count(dataset_id, version, query, key=key)
            return total, False, ms
        counted, ms = self._timed_count(dataset_id, version, query, QUICK_COUNT_UP_TO + 1, key)
        if counted <= QUICK_COUNT_UP_TO:
            return counted, False, ms
        compiled = self._compiled(query, dataset_id, version, key)
        [[plan]] = self.store.fetchall("EXPLAIN (FORMAT JSON) " + compiled.sql, compiled.params)
        plan = json.loads(plan) if isinstance(plan, str) else plan
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        if estimate < EXACT_COUNT_UP_TO:  # few expected: count on, the figure may be far off
            counted, more_ms = self._timed_count(dataset_id, version, query,
                                                 EXACT_COUNT_UP_TO + 1, key)
            ms += more_ms
            if counted <= EXACT_COUNT_UP_TO:
                return counted, False, ms
        total = max(estimate, counted)
        return total, True, ms * total / counted

    def _timed_count(self, dataset_id: str, version: str, query: Query,
                     limit: int | None = None, key: str | None = None) -> tuple[int, float]:
        """The number of matches (at most ``limit``) and the milliseconds counting took."""
        t = time.perf_counter()
        total = int(self._sql(query, dataset_id, version, key, count=True, limit=limit)[0][0])
        return total, (time.perf_counter() - t) * 1000

    def _sorting_pays(self, dataset_id: str, version: str, total: int, count_ms: float,
                      page_size: int) -> bool:
        return sorting_pays(self.store.key_span(dataset_id, version), total, count_ms,
                            page_size)

    def _sql(self, query: Query, dataset_id: str, version: str, key: str | None = None,
             **kw: Any) -> list[tuple]:
        compiled = self._compiled(query, dataset_id, version, key, **kw)
        return self.store.fetchall(compiled.sql, compiled.params)

    def _compiled(self, query: Query, dataset_id: str, version: str, key: str | None,
                  after: Any = None, **kw: Any) -> CompiledSql:
        """``compile_sql``, from ``_COMPILED`` when ``key`` (the query's ``query_key`` over
        this dataset and version) was compiled in the same shape before; a keyset cursor is
        bound, not compiled."""
        def compile_() -> CompiledSql:
            return compile_sql(query, self.store.dialect, dataset_id, version, after=after, **kw)

        if key is None:
            return compile_()
        shape = (key, self.store.dialect, dataset_id, version,
                 None if after is None else 1 if isinstance(after, int) else len(after),
                 tuple(sorted(kw.items())))
        compiled = _COMPILED.get(shape)
        if compiled is None:
            compiled = compile_()
            _COMPILED.put(shape, compiled)
        return compiled if after is None else with_cursor(compiled, after)

    # -- VECTOR / MIX -----------------------------------------------------------------------
    def _vector_page(self, dataset_id: str, version: str, query: Query, index: _Index,
                     max_results: int, plan: planner.Plan) -> SearchPage:
        fp = fingerprint(query, dataset_id, version, index.digest())
        token = query.option("NextToken")
        offset = 0 if token is None else _offset(
            decode_token(str(token), "vector", fp, self.token_key))
        cached = self._cached(fp) if token is not None else None
        if cached is None:
            hits = self._sorted(query, self._rank(dataset_id, version, query, index, plan))
            cached = self._remember(fp, hits, plan.explain())
        page = cached.hits[offset:offset + max_results]
        end = offset + len(page)
        next_token = (encode_token("vector", end, fp, self.token_key)
                      if end < len(cached.hits) else None)
        metas = self.store.get_file_metas_by_pk([h.pk for h in page])
        scores = {h.pk: h.score for h in page}
        items = [(m, scores[m.pk]) for m in metas if m.pk is not None]
        return SearchPage(items, len(cached.hits), next_token, max_results, cached.plan)

    def _sources(self, dataset_id: str, version: str, query: Query,
                 index: _Index) -> tuple[SqlFilter, StoreVectors]:
        index_set, embedder, vector_store = self.open_index(
            dataset_id, version, index.set_id, str(query.option("IndexContent", "file")))
        factors = (float(query.option("TextFactor", 1.0)),
                   float(query.option("ImageFactor", 1.0)),
                   float(query.option("AudioFactor", 1.0)))
        vector = query_vector(embedder, query.semantic, index.upload, lambda uri:
                              query_file_input(self.store, self.loader, dataset_id, version,
                                               uri), factors)
        return (SqlFilter(self.store, query, dataset_id, version),
                StoreVectors(vector_store, vector, index_set, dataset_id, version,
                             joined_filter(self.store, vector_store, query, dataset_id,
                                           version)))

    def _rank(self, dataset_id: str, version: str, query: Query, index: _Index,
              plan: planner.Plan) -> list[planner.Hit]:
        src, vectors = self._sources(dataset_id, version, query, index)
        top_k = int(query.option("TopK", DEFAULT_TOP_K))
        hits = planner.ranked(src, vectors, query, top_k=top_k, threshold=_threshold(query),
                              limits=self.limits, plan=plan)
        plan.results = len(hits)
        plan.notes.append(f"index set {vectors.where['index_set_id']}; TopK={top_k}, "
                          f"ScoreThreshold={_threshold(query)}; score = similarity to the "
                          "query vector, the filter adds nothing to it")
        return hits

    def _sorted(self, query: Query, hits: list[planner.Hit]) -> list[planner.Hit]:
        """The ranked list reordered by SortBy/Order (time, then key), if the query says so."""
        sort = sort_column(query)
        if sort is None or not hits:
            return hits
        column, desc = sort
        metas = {m.pk: m for m in self.store.get_file_metas_by_pk([h.pk for h in hits])}

        def key(h: planner.Hit) -> tuple[int, int]:
            value = getattr(metas[h.pk], column) if h.pk in metas else None
            return (NULL_SORT_KEY if value is None else int(value), h.pk)

        return sorted(hits, key=key, reverse=desc)

    # -- ranked-list cache for NextToken pages ----------------------------------------------
    def _cached(self, fp: str) -> _Ranked | None:
        entry = self.ranked.get(fp)
        if entry is None or time.monotonic() - entry.at > self.cache_s:
            return None
        return entry

    def _remember(self, fp: str, hits: list[planner.Hit], plan: str) -> _Ranked:
        entry = _Ranked(hits, plan, time.monotonic())
        self.ranked.put(fp, entry)
        return entry

    def _check_spec(self, index: IndexSet) -> None:
        checks = [("embeddingModel", index.embedding_model, getattr(self.embedder, "model", None)),
                  ("dimension", index.dimension, getattr(self.embedder, "dimension", None)),
                  ("databaseTableName", index.table, getattr(self.vector_store, "table", None))]
        for key, built, mine in checks:
            if mine is not None and built and built != mine:
                raise ConfigError(f"the index set {index.index_set_id!r} was built with "
                                  f"{key}={built!r}, but this search uses {mine!r}")


def sorting_pays(rows: int, matches: int, count_ms: float, page_size: int) -> bool:
    """Whether TAG pages should collect and sort the matches instead of walking the key order.

    Sorting reruns the count's plan, so a page costs about what counting did (``count_ms``).
    Walking tests ``rows`` in key order until the page is full, ~page_size x rows / matches of
    them: the better plan when matches are dense, the trap when they are rare (0.1 % of 10M
    rows: ~100k rows for one page) or the engine misjudges rare tags as common.
    """
    walk_rows = min(rows, (page_size + 1) * rows / max(matches, 1))
    return count_ms <= walk_rows * WALK_MS_PER_ROW


def keeping_sorted_keys_pays(matches: int, count_ms: float, page_size: int) -> bool:
    """Whether a listing of several pages should sort its matches once and page through the
    kept keys (see ``_SORTED_KEYS``) although walking would serve its first page sooner."""
    return (page_size < matches <= SORTED_KEYS_UP_TO
            and count_ms + matches * KEY_MS <= CHEAP_SORT_MS)


def _chunks(items: Iterable[planner.Hit], size: int) -> Iterator[list[planner.Hit]]:
    chunk: list[planner.Hit] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _threshold(query: Query) -> float | None:
    value = query.option("ScoreThreshold")
    return None if value is None else float(value)


def _digest(upload: bytes | None) -> str:
    return "" if upload is None else hashlib.sha256(upload).hexdigest()


def _keyset(query: Query, row: tuple) -> Any:
    return int(row[0]) if sort_column(query) is None else [int(row[-1]), int(row[0])]


def _tag_cursor(query: Query, fp: str,
                key: bytes) -> tuple[Any, int | None, bool, bool, int | None]:
    """``(keyset, total, sort_matches, total_is_estimate, offset)`` from the query's
    NextToken (``offset``: where the page starts in the listing's sorted keys, when it had
    them); ``(None, None, False, False, None)`` on the first page."""
    token = query.option("NextToken")
    if token is None:
        return None, None, False, False, None
    cursor = decode_token(str(token), "tag", fp, key)
    if not isinstance(cursor, dict):
        cursor = {}
    key, total, sort = cursor.get("k"), cursor.get("n"), cursor.get("s", False)
    estimated, offset = cursor.get("e", False), cursor.get("o")
    sorted_ = sort_column(query) is not None
    if (_is_int(total) and total >= 0 and isinstance(sort, bool) and isinstance(estimated, bool)
            and (offset is None or _is_int(offset) and offset > 0)):
        if not sorted_ and _is_int(key):
            return key, total, sort, estimated, offset
        if sorted_ and isinstance(key, list) and len(key) == 2 and all(map(_is_int, key)):
            return tuple(key), total, sort, estimated, offset
    raise DslSemanticError("bad-next-token", "NextToken is not valid: its cursor does not fit "
                           "this query; start again without NextToken")


def _offset(cursor: Any) -> int:
    if not _is_int(cursor) or cursor < 0:
        raise DslSemanticError("bad-next-token", "NextToken is not valid: its cursor does not "
                               "fit this query; start again without NextToken")
    return int(cursor)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shape_text(sort: bool) -> str:
    return "sorting the matches" if sort else "walking the key order"


def _order_text(query: Query) -> str:
    sort = sort_column(query)
    if sort is None:
        return " in key order"
    return f" by {query.option('SortBy')} {'DESC' if sort[1] else 'ASC'}, then key"
