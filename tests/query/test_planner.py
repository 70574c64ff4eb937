"""The planner against exact search, at every selectivity, with in-memory sources.

The filter source is a sorted list of keys; the vector source ranks precomputed exact scores
(numpy), so the expected answer is computed independently: the matches' scores, strictly above
the threshold, best first, cut at TopK. Small ``Limits`` make 50,000 rows exercise both
strategies and the fallback.
"""

from __future__ import annotations

import bisect

import numpy as np
import pytest

from mmdm.query import Compare, Const, Node, Op, Or, Query, and_, or_, parse, planner
from mmdm.query.errors import DslSemanticError
from mmdm.query.paging import decode_token, encode_token, fingerprint

N = 50_000
LIMITS = planner.Limits(id_batch=1_000, small=2_000, first_fetch=50)
RNG = np.random.default_rng(11)
_VECTORS = RNG.standard_normal((N, 32)).astype(np.float32)
_VECTORS /= np.linalg.norm(_VECTORS, axis=1, keepdims=True)
_QUERY = _VECTORS[0] * 0.5 + RNG.standard_normal(32).astype(np.float32) * 0.1
SCORES = _VECTORS @ (_QUERY / np.linalg.norm(_QUERY))
IDS = [f"m{i:06d}" for i in range(N)]


class ListFilter:
    """Matches as sorted pks (pk = position + 1)."""

    def __init__(self, positions: np.ndarray):
        self.pks = sorted(int(p) + 1 for p in positions)
        self.members = {IDS[pk - 1]: pk for pk in self.pks}
        self.restricted = 0

    def count(self, limit: int) -> int:
        return min(len(self.pks), limit)

    def ids(self, after: int | None, limit: int) -> list[tuple[int, str]]:
        start = 0 if after is None else bisect.bisect_right(self.pks, after)
        return [(pk, IDS[pk - 1]) for pk in self.pks[start:start + limit]]

    def restrict(self, file_meta_ids: list[str]) -> dict[str, int]:
        self.restricted = max(self.restricted, len(file_meta_ids))
        return {f: self.members[f] for f in file_meta_ids if f in self.members}


class ExactVectors:
    def __init__(self, max_top_k: int = 4_096):
        self.max_top_k = max_top_k
        self.calls: list[tuple[int, int | None, Node]] = []

    def _allowed(self, pushdown: Node) -> set[str]:
        """The ids a pushed filter admits: the tests push only an OR of id equalities."""
        assert isinstance(pushdown, Or) and all(
            isinstance(i, Compare) and i.attr == "DatasetFileMetaId" for i in pushdown.items)
        return {str(i.value) for i in pushdown.items if isinstance(i, Compare)}

    def search(self, *, top_k: int, score_threshold: float | None,
               file_meta_ids: list[str] | None, pushdown: Node) -> list[tuple[str, float]]:
        assert 1 <= top_k <= self.max_top_k
        self.calls.append((top_k, None if file_meta_ids is None else len(file_meta_ids),
                           pushdown))
        rows = (np.arange(N) if file_meta_ids is None
                else np.array([int(f[1:]) for f in file_meta_ids]))
        if pushdown != Const(True):
            allowed = self._allowed(pushdown)
            rows = np.array([r for r in rows if IDS[r] in allowed], dtype=int)
        order = rows[np.lexsort((rows, -SCORES[rows]))][:top_k]  # ids sort as rows do
        return [(IDS[r], float(SCORES[r])) for r in order.tolist()
                if score_threshold is None or SCORES[r] > score_threshold]


def expected(positions: np.ndarray, top_k: int | None, threshold: float | None) -> list[str]:
    rows = sorted(positions.tolist(), key=lambda r: (-float(SCORES[r]), IDS[r]))
    kept = [IDS[r] for r in rows if threshold is None or SCORES[r] > threshold]
    return kept if top_k is None else kept[:top_k]


def run(positions: np.ndarray, top_k: int | None, threshold: float | None = None,
        vectors: ExactVectors | None = None, query: Query | None = None
        ) -> tuple[list[planner.Hit], planner.Plan, ExactVectors, ListFilter]:
    src, vectors = ListFilter(positions), vectors or ExactVectors()
    plan = planner.Plan("VECTOR")
    hits = planner.ranked(src, vectors, query or Query(), top_k=top_k, threshold=threshold,
                          limits=LIMITS, plan=plan)
    return hits, plan, vectors, src


def recall(got: list[str], want: list[str]) -> float:
    return len(set(got) & set(want)) / len(want) if want else float(got == want)


@pytest.mark.parametrize("selectivity", [0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0])
@pytest.mark.parametrize(("top_k", "threshold"), [(1, None), (10, None), (100, 0.0),
                                                  (1000, None), (10, 0.3)])
def test_exact_at_every_selectivity(selectivity: float, top_k: int,
                                    threshold: float | None) -> None:
    positions = RNG.permutation(N)[: max(1, round(N * selectivity))]
    hits, plan, vectors, src = run(positions, top_k, threshold)
    want = expected(positions, top_k, threshold)
    got = [h.file_meta_id for h in hits]
    assert got == want, plan.explain()  # exact backend: exact answer, in rank order
    assert recall(got, want) >= 0.99
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(ids is None or ids <= LIMITS.id_batch for _, ids, _ in vectors.calls)
    assert src.restricted <= vectors.max_top_k
    assert plan.strategy.startswith("ids" if len(positions) <= LIMITS.small else "over-fetch")


def test_top_k_larger_than_the_matches_returns_every_match() -> None:
    positions = np.array([5, 17, 40_000])
    hits, _, vectors, _ = run(positions, 100)
    assert [h.file_meta_id for h in hits] == expected(positions, None, None)
    assert len(vectors.calls) == 1 and vectors.calls[0][:2] == (3, 3)


def test_threshold_above_every_score_returns_nothing() -> None:
    hits, _, _, _ = run(np.arange(N), 10, threshold=float(SCORES.max()))
    assert hits == []


def test_no_match_makes_no_vector_search() -> None:
    hits, plan, vectors, _ = run(np.array([], dtype=int), 10)
    assert hits == [] and vectors.calls == [] and plan.filter_count == 0


def test_filter_that_rejects_the_nearest_falls_back_to_ids() -> None:
    """The matches are the 30 % least similar: no over-fetch up to max_top_k finds them."""
    positions = np.argsort(SCORES)[: int(N * 0.3)]
    hits, plan, vectors, _ = run(positions, 10)
    assert [h.file_meta_id for h in hits] == expected(positions, 10, None)
    assert "max_top_k=4096 reached first" in plan.strategy
    assert max(ids or 0 for _, ids, _ in vectors.calls) == LIMITS.id_batch


def test_over_fetch_doubles_until_top_k_survive() -> None:
    positions = RNG.permutation(N)[: N // 10]  # 10 %: roughly 1 in 10 hits survives
    hits, plan, vectors, _ = run(positions, 100)
    fetches = [k for k, ids, _ in vectors.calls]
    assert all(ids is None for _, ids, _ in vectors.calls)
    assert fetches == sorted(fetches) and all(b >= 2 * a for a, b in zip(fetches, fetches[1:]))
    assert len(hits) == 100 and len(plan.rounds) == len(fetches)


def test_pushable_part_goes_to_the_store() -> None:
    pushed = or_(*(Compare("DatasetFileMetaId", Op.EQ, IDS[i]) for i in range(0, N, 10)))
    query = Query(and_(pushed, Compare("FileName", Op.MATCH, "x")))
    positions = np.arange(0, N, 20)  # what SQL says matches: a subset of the pushed part
    hits, _, vectors, _ = run(positions, 10, query=query)
    assert [h.file_meta_id for h in hits] == expected(positions, 10, None)
    assert vectors.calls[0][2] == planner.pushable(query.filter) != Const(True)


def test_iter_ranked_has_no_top_k_cap() -> None:
    positions = RNG.permutation(N)[: N // 4]
    for threshold in (0.25, None):
        src, vectors, plan = ListFilter(positions), ExactVectors(), planner.Plan("VECTOR")
        got = list(planner.iter_ranked(src, vectors, Query(), threshold=threshold,
                                       limits=LIMITS, plan=plan))
        want = expected(positions, None, threshold)
        assert sorted(h.file_meta_id for h in got) == sorted(want), plan.explain()
        assert all(ids is None or ids <= LIMITS.id_batch for _, ids, _ in vectors.calls)


@pytest.mark.parametrize(("text", "upload", "mode"), [
    ("FileName:'a'", False, "TAG"),
    ("Content:'car'", False, "VECTOR"),
    ("Content:'car' AND QueryType='VECTOR'", False, "VECTOR"),
    ("Content:'car' AND QueryType='TAG'", False, "TAG"),
    ("QueryType='MIX'", True, "VECTOR"),
    ("QueryImage='oss://b/a.jpg' AND QueryType='TAG'", False, "TAG"),
    ("Content:'a' AND QueryImage='oss://b/a.jpg'", False, "VECTOR"),  # fused
    ("Content:'a'", True, "VECTOR"),  # fused with the upload
])
def test_query_mode(text: str, upload: bool, mode: str) -> None:
    assert planner.query_mode(parse(text), image_upload=upload)[0] == mode


@pytest.mark.parametrize(("text", "upload", "code"), [
    ("QueryType='VECTOR' AND FileName:'a'", False, "missing-semantic"),
    ("QueryImage='oss://b/a.jpg'", True, "conflicting-semantic"),
    ("Content:'a' AND QueryImage='oss://b/a.jpg'", True, "conflicting-semantic"),
])
def test_query_mode_errors(text: str, upload: bool, code: str) -> None:
    with pytest.raises(DslSemanticError) as info:
        planner.query_mode(parse(text), image_upload=upload)
    assert info.value.code == code


def test_tokens_round_trip_and_refuse_tampering() -> None:
    fp = fingerprint(parse("FileName:'a' AND MaxResults=5"), "ds", "v1")
    assert fp == fingerprint(parse("FileName:'a' AND MaxResults=7 AND NextToken='x'"), "ds", "v1")
    key = b"k" * 32
    token = encode_token("tag", [123, 45], fp, key)
    assert decode_token(token, "tag", fp, key) == [123, 45]
    edited = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    bad = [edited, token[:-6], "not-a-token", "", token + "x"]
    for value in bad:
        with pytest.raises(DslSemanticError, match="NextToken is not valid") as info:
            decode_token(value, "tag", fp, key)
        assert info.value.code == "bad-next-token"
    with pytest.raises(DslSemanticError, match="changed or cut short"):
        decode_token(token, "tag", fp, b"another key")  # only the issuing service's key
    other = fingerprint(parse("FileName:'b'"), "ds", "v1")
    with pytest.raises(DslSemanticError, match="different query"):
        decode_token(token, "tag", other, key)
    with pytest.raises(DslSemanticError, match="different query"):
        decode_token(token, "vector", fp, key)
