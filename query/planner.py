"""The search planner: how a vector query with a filter is answered exactly, and why.

The filter lives in SQL (every attribute), the vectors in a vector store that can filter only
its index fields. Two strategies give exactly ``min(TopK, matches scoring > ScoreThreshold)``
hits, best first, whatever the filter's selectivity:

- ``ids``: few matches. Their ids go to the vector search in batches (``Limits.id_batch``,
  a few thousand per call), each batch's best hits are merged. Exact by construction.
- ``over-fetch``: many matches. Search with only the part of the filter the store can apply
  (``compile.vector.pushable``), post-filter the hits in SQL, and double the fetch until TopK
  hits survive or the store has no more candidates. Exact on an exact store (a match
  outside the top ``fetch`` hits scores no better than the last hit fetched); on an
  approximate one (Elasticsearch's HNSW) as good as its recall at ``fetch``. When the
  store's ``max_top_k`` is reached first (a filter that rejects most of the nearest
  vectors), the plan falls back to ``ids``, so no id list is ever longer than one batch.

A vector store in the metadata's own database (pgvector) takes the whole filter as a join
instead, and the count picks how it searches:

- ``sql, exact``: few matches. Distances over exactly the matching rows, sorted.
- ``sql, ann``: many matches. The store's ANN index with an iterative scan under the filter:
  approximate, as any ANN index is (bench/vectors.py measures its recall).

The count that picks the strategy stops at ``Limits.small + 1``, so planning never scans every
match. This module takes small protocol objects; ``adapters/search.py`` binds them to SQL and a
vector store.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .ast import Const, Node, Query
from .compile.vector import pushable
from .errors import DslSemanticError


@dataclass(frozen=True)
class Hit:
    file_meta_id: str
    score: float
    pk: int

    @property
    def rank_key(self) -> tuple[float, str]:
        return -self.score, self.file_meta_id  # best first, ties by id: pages are stable


class FilterSource(Protocol):
    """The filter's matches (SQL): counted, listed in key order, or tested by id."""

    def count(self, limit: int) -> int:
        """The number of matches, counting at most ``limit``."""
        ...

    def ids(self, after: int | None, limit: int) -> list[tuple[int, str]]:
        """The next ``limit`` matches after key ``after``, as ``(pk, file_meta_id)``."""
        ...

    def restrict(self, file_meta_ids: list[str]) -> dict[str, int]:
        """Which of these files match: ``{file_meta_id: pk}``."""
        ...


class VectorSource(Protocol):
    """A vector index set searched with one query vector."""

    max_top_k: int

    def search(self, *, top_k: int, score_threshold: float | None,
               file_meta_ids: list[str] | None, pushdown: Node) -> list[tuple[str, float]]:
        """``(file_meta_id, score)`` of the ``top_k`` best above the threshold, best first,
        restricted to ``file_meta_ids`` and to ``pushdown`` (a filter it can express)."""
        ...


class JoinedVectorSource(VectorSource, Protocol):
    """A vector index set in the filter's own database: it applies the whole filter itself."""

    joins_filter: bool

    def search_joined(self, *, top_k: int, score_threshold: float | None,
                      exact: bool) -> list[tuple[str, float]]:
        """The ``top_k`` best matches of the filter above the threshold, best first; exact
        distances over every match, or through an ANN index (``exact=False``)."""
        ...


@dataclass(frozen=True)
class Limits:
    """Where the strategies switch. ``id_batch`` ids per restricted search (Milvus takes
    ``in [...]`` of 10k literal ids well); ``small``: up to this many matches go by ids."""

    id_batch: int = 4_000
    small: int = 20_000
    first_fetch: int = 100  # smallest over-fetch: a cheap first look
    # A store that joins the filter (pgvector): exact distances up to this many matches, its
    # ANN index above. An exact row costs 2-5 us (an index lookup and a distance), an IVFFlat
    # probe of ~1000 rows ~2 ms whatever the filter; below ~1 % of the rows an IVF index loses
    # recall, because the best matches are spread over many lists (bench/vectors.py).
    joined_exact: int = 10_000


@dataclass
class Plan:
    """What ran and why, for ``explain``."""

    mode: str
    reason: str = ""
    strategy: str = ""
    filter_count: int | None = None
    count_capped: bool = False
    rounds: list[str] = field(default_factory=list)
    searches: int = 0
    max_ids_per_search: int = 0
    results: int = 0
    notes: list[str] = field(default_factory=list)

    def explain(self) -> str:
        lines = [f"{self.mode} plan: {self.reason}"]
        if self.filter_count is not None:
            more = " or more (counting stopped there)" if self.count_capped else ""
            lines.append(f"filter matches: {self.filter_count}{more}")
        if self.strategy:
            lines.append(f"strategy: {self.strategy}")
        lines += [f"  round {i}: {r}" for i, r in enumerate(self.rounds, 1)]
        if self.searches:
            lines.append(f"vector searches: {self.searches}, longest id list: "
                         f"{self.max_ids_per_search}")
        lines.append(f"results: {self.results}")
        return "\n".join(lines + self.notes)


def query_mode(query: Query, *, image_upload: bool = False) -> tuple[str, str]:
    """``("TAG" | "VECTOR", why)``: which kind of plan a query needs.

    MIX (the default) with a semantic part ranks the filter's matches by similarity; without
    one it is a TAG listing. VECTOR is the same ranking and insists on a semantic part. TAG
    ignores a semantic part (PAI: Content/QueryImage apply to VECTOR and MIX only).

    Raises:
        DslSemanticError: ``missing-semantic`` (VECTOR without a query text or image) or
            ``conflicting-semantic`` (two images: a QueryImage and an upload). A text and an
            image together are one fused query (see ``search_sources.query_vector``).
    """
    query_type = str(query.option("QueryType", "MIX"))
    semantic = query.semantic
    text = semantic is not None and semantic.text is not None
    audio = semantic is not None and semantic.audio is not None
    images = [x for x in (image_upload, semantic is not None and semantic.image is not None)
              if x]
    inputs = [x for x in (text, *images, audio) if x]
    if query_type == "TAG":
        why = "QueryType=TAG" + (": the semantic part is ignored" if inputs else "")
        return "TAG", why
    if len(images) > 1:
        raise DslSemanticError("conflicting-semantic", "give one query image: QueryImage or "
                               "an uploaded image, not both")
    if not inputs:
        if query_type == "VECTOR":
            raise DslSemanticError("missing-semantic", "QueryType=VECTOR needs Content (or "
                                   "QueryText), QueryImage or QueryAudio")
        return "TAG", "MIX without a semantic part is a TAG listing"
    named = [n for n, given in (("text", text), ("image", images), ("audio", audio)) if given]
    fused = f" to the {' and the '.join(named)} together" if len(named) > 1 else ""
    return "VECTOR", (f"QueryType={query_type}: the filter's matches ranked by similarity"
                      f"{fused}")


def rank_all(hits: list[Hit]) -> list[Hit]:
    return sorted(hits, key=lambda h: h.rank_key)


def _top(hits: list[Hit], top_k: int | None) -> list[Hit]:
    if top_k is None:
        return rank_all(hits)
    return heapq.nsmallest(top_k, hits, key=lambda h: h.rank_key)


def _batches(src: FilterSource, vectors: VectorSource, top_k: int | None,
             threshold: float | None, limits: Limits, plan: Plan) -> Iterator[list[Hit]]:
    """The best hits of each batch of matching ids (every hit when ``top_k`` is None)."""
    size = max(1, min(limits.id_batch, vectors.max_top_k))
    after: int | None = None
    while page := src.ids(after, size):
        pks = {fid: pk for pk, fid in page}
        k = len(page) if top_k is None else min(top_k, len(page))
        found = vectors.search(top_k=k, score_threshold=threshold, file_meta_ids=list(pks),
                               pushdown=Const(True))
        plan.searches += 1
        plan.max_ids_per_search = max(plan.max_ids_per_search, len(page))
        yield [Hit(fid, score, pks[fid]) for fid, score in found if fid in pks]
        if len(page) < size:
            return
        after = page[-1][0]


def _next_fetch(fetch: int, found: int, survivors: int, top_k: int | None, cap: int) -> int:
    """At least double; jump further when the survival rate so far says TopK needs more."""
    wanted = 2 * fetch
    if top_k is not None and survivors:
        wanted = max(wanted, math.ceil(top_k * found / survivors * 1.25))
    return min(cap, wanted)


def _over_fetch(src: FilterSource, vectors: VectorSource, top_k: int | None,
                threshold: float | None, pushdown: Node, limits: Limits,
                plan: Plan) -> list[Hit] | None:
    """The exact ranked hits, or None when ``max_top_k`` is reached before they are known."""
    cap = vectors.max_top_k
    fetch = cap if top_k is None else min(cap, max(limits.first_fetch, 2 * top_k))
    matched: dict[str, int] = {}
    checked: set[str] = set()
    while True:
        found = vectors.search(top_k=fetch, score_threshold=threshold, file_meta_ids=None,
                               pushdown=pushdown)
        plan.searches += 1
        new = [fid for fid, _ in found if fid not in checked]
        matched.update(src.restrict(new))  # the post-filter: only ids not seen in a round yet
        checked.update(new)
        survivors = [Hit(fid, score, matched[fid]) for fid, score in found if fid in matched]
        plan.rounds.append(f"top {fetch}: {len(found)} hits, {len(survivors)} pass the filter")
        if top_k is not None and len(survivors) >= top_k:
            return _top(survivors, top_k)
        if len(found) < fetch:  # the store has no more candidates above the threshold
            return rank_all(survivors)
        if fetch >= cap:
            return None
        fetch = _next_fetch(fetch, len(found), len(survivors), top_k, cap)


def _joined(src: FilterSource, vectors: JoinedVectorSource, top_k: int,
            threshold: float | None, exact: bool, limits: Limits, plan: Plan) -> list[Hit]:
    if exact:
        plan.strategy = (f"sql, exact: <= {limits.joined_exact} matches, distances over "
                         "exactly those rows in the database, sorted")
    else:
        plan.strategy = (f"sql, ann: more than {limits.joined_exact} matches, the ANN index "
                         "scanned under the filter (iterative scan)")
    found = vectors.search_joined(top_k=top_k, score_threshold=threshold, exact=exact)
    plan.searches += 1
    pks = src.restrict([fid for fid, _ in found])
    return [Hit(fid, score, pks[fid]) for fid, score in found if fid in pks]


def _count(src: FilterSource, limits: Limits, plan: Plan) -> int:
    n = src.count(limits.small + 1)
    plan.filter_count, plan.count_capped = min(n, limits.small + 1), n > limits.small
    return n


def ranked(src: FilterSource, vectors: VectorSource, query: Query, *, top_k: int | None,
           threshold: float | None, limits: Limits, plan: Plan) -> list[Hit]:
    """Exactly the ``top_k`` best matches scoring above ``threshold`` (every one when ``top_k``
    is None), best first; ``plan`` records how they were found."""
    n = _count(src, limits, plan)
    if n == 0:
        plan.strategy = "none: nothing matches the filter"
        return []
    if top_k is not None and getattr(vectors, "joins_filter", False):
        return _joined(src, vectors, top_k, threshold, n <= limits.joined_exact, limits, plan)
    if n <= limits.small:
        plan.strategy = (f"ids: {n} matches <= {limits.small}, the search is restricted to "
                         f"their ids in batches of <= {limits.id_batch}")
        return _top([h for batch in _batches(src, vectors, top_k, threshold, limits, plan)
                     for h in batch], top_k)
    push = pushable(query.filter)
    plan.strategy = (f"over-fetch: more than {limits.small} matches, search with "
                     f"{'no filter' if push == Const(True) else 'the pushable filter'} and "
                     "post-filter the hits in SQL, doubling the fetch")
    hits = _over_fetch(src, vectors, top_k, threshold, push, limits, plan)
    if hits is not None:
        return hits
    plan.strategy += (f"; max_top_k={vectors.max_top_k} reached first, so then ids in "
                      f"batches of <= {limits.id_batch}")
    return _top([h for batch in _batches(src, vectors, top_k, threshold, limits, plan)
                 for h in batch], top_k)


def iter_ranked(src: FilterSource, vectors: VectorSource, query: Query, *,
                threshold: float | None, limits: Limits, plan: Plan) -> Iterator[Hit]:
    """Every match scoring above ``threshold``, without a TopK cap, in bounded memory.

    Best first when the candidates fit one over-fetch (or the matches are few); otherwise
    batch by batch of matching ids, each batch best first (an export needs every hit, not
    one global order, and must not hold millions of them).
    """
    n = _count(src, limits, plan)
    if n == 0:
        return
    if n > limits.small and threshold is not None:
        plan.strategy = "over-fetch to max_top_k, no TopK cap"
        hits = _over_fetch(src, vectors, None, threshold, pushable(query.filter), limits, plan)
        if hits is not None:
            yield from hits
            return
    if n <= limits.small:
        plan.strategy = "ids, merged and ranked"
        yield from rank_all([h for b in _batches(src, vectors, None, threshold, limits, plan)
                             for h in b])
        return
    plan.strategy = "ids, streamed batch by batch"
    for batch in _batches(src, vectors, None, threshold, limits, plan):
        yield from rank_all(batch)
