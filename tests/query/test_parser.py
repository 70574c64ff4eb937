"""The grammar: (text, tree) pairs built with constructors, precedence, spans, printing."""

from __future__ import annotations

import doctest
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mmdm import query
from mmdm.query import (And, Compare, Const, Has, Not, Op, Or, Query, Semantic, Span, and_, or_,
                        parse, to_dsl)
from mmdm.query.grammar import DslParser
from mmdm.query.parser import parse_tree

from .cases import OFFICIAL_EN, OFFICIAL_ZH, VALID


def C(attr: str, op: str, value: str | int | float) -> Compare:
    return Compare(attr, Op(op), value)


A1, B2, C3 = C("FileName", "=", "a"), C("FileDir", "=", "b"), C("DataSize", "=", 3)

TREES = [
    ("FileName='a'", A1),
    ('FileName="a"', A1),
    ("FileName = 'a'", A1),
    ("filename='a'", A1),
    ("FileName='a' AND FileDir='b'", And((A1, B2))),
    ("FileName='a' and FileDir='b' AnD DataSize=3", And((A1, B2, C3))),
    ("FileName='a' OR FileDir='b' OR DataSize=3", Or((A1, B2, C3))),
    ("FileName='a' OR FileDir='b' AND DataSize=3", Or((A1, And((B2, C3))))),
    ("FileName='a' AND FileDir='b' OR DataSize=3", Or((And((A1, B2)), C3))),
    ("(FileName='a' OR FileDir='b') AND DataSize=3", And((Or((A1, B2)), C3))),
    ("(FileName='a' AND FileDir='b') AND DataSize=3", And((A1, B2, C3))),
    ("FileName='a' AND (FileDir='b' AND DataSize=3)", And((A1, B2, C3))),
    ("NOT FileName='a' AND FileDir='b'", And((Not(A1), B2))),
    ("NOT (FileName='a' AND FileDir='b')", Not(And((A1, B2)))),
    ("NOT NOT FileName='a'", Not(Not(A1))),
    ("not FileName='a' or not FileDir='b'", Or((Not(A1), Not(B2)))),
    ("NOT HAS FileName", Not(Has("FileName"))),
    ("has tags.ALL", Has("Tags.all")),
    ("HAS MetaAttributes.Image.Width", Has("MetaAttributes.Image.Width")),
    ("DataSize>=10", C("DataSize", ">=", 10)),
    ("DataSize > -1.5", C("DataSize", ">", -1.5)),
    ("DataSize<1e3", C("DataSize", "<", 1000.0)),
    ("DataSize<=0", C("DataSize", "<=", 0)),
    ("FileDir:'blue_car'", C("FileDir", ":", "blue_car")),
    ("FileName='it\\'s'", C("FileName", "=", "it's")),
    ('FileName="say \\"hi\\""', C("FileName", "=", 'say "hi"')),
    ("FileName='tab\\tnew\\nline\\\\'", C("FileName", "=", "tab\tnew\nline\\")),
    ("FileName='\\u00e9\\/'", C("FileName", "=", "é/")),
    ("FileName='车道线 🚗'", C("FileName", "=", "车道线 🚗")),
    ("FileUpdateTime > '2025-02-28T08:00:00+08:00'",
     C("FileUpdateTime", ">", "2025-02-28T00:00:00.000Z")),
    ("SyncTime < '2025-02-28'", C("SyncTime", "<", "2025-02-28T00:00:00.000Z")),
    ("MetaAttributes.w = '5'", C("MetaAttributes.w", "=", "5")),
    ("MetaAttributes.w = 5", C("MetaAttributes.w", "=", 5)),
    ("", Const(True)),
]


def test_no_grammar_conflicts() -> None:
    assert DslParser._lrtable.sr_conflicts == [] == DslParser._lrtable.rr_conflicts


@pytest.mark.parametrize(("text", "tree"), TREES, ids=[t for t, _ in TREES])
def test_tree(text: str, tree) -> None:
    assert parse(text).filter == tree


def test_numbers_keep_their_type() -> None:
    assert type(parse("DataSize=10").filter.value) is int  # type: ignore[union-attr]
    assert type(parse("DataSize=10.0").filter.value) is float  # type: ignore[union-attr]


def test_official_example_envelope() -> None:
    q = parse(OFFICIAL_ZH)
    assert q.semantic == Semantic(text="a fallen water horse")
    assert dict(q.options) == {"TopK": 100, "SignMode": "PUBLIC"}
    assert isinstance(q.filter, And) and len(q.filter.items) == 6
    assert parse(OFFICIAL_EN) == q


def test_options_are_canonicalised() -> None:
    q = parse("order='asc' AND sortby='fileupdatetime' AND ScoreThreshold=1 AND status='all'")
    assert dict(q.options) == {"Order": "ASC", "SortBy": "FileUpdateTime",
                               "ScoreThreshold": 1.0, "Status": "ALL"}
    assert q.filter == Const(True)


def test_spans_are_kept_but_not_compared() -> None:
    text = "FileName='a' AND NOT HAS FileDir"
    tree = parse_tree(text)
    assert isinstance(tree, And)
    first, second = tree.items
    assert tree.span == Span(0, len(text))
    assert first.span == Span(0, 12)
    assert (first.attr_span, first.value_span) == (Span(0, 8), Span(9, 12))  # type: ignore
    assert second.span == Span(17, len(text))
    assert second.item.attr_span == Span(25, 32)  # type: ignore[union-attr]
    assert tree == And((C("FileName", "=", "a"), Not(Has("FileDir"))))


def test_ast_invariants() -> None:
    with pytest.raises(ValueError, match="two or more"):
        And((A1,))
    with pytest.raises(ValueError, match="flatten"):
        And((And((A1, B2)), C3))
    with pytest.raises(ValueError, match="flatten"):
        Or((A1, Or((B2, C3))))
    assert and_(And((A1, B2)), C3) == And((A1, B2, C3))
    assert or_(A1) == A1 and and_() == Const(True) and or_() == Const(False)
    with pytest.raises(TypeError):
        Query("FileName='a'")  # type: ignore[arg-type]


def test_query_options_are_read_only() -> None:
    q = parse("TopK=5")
    with pytest.raises(TypeError):
        q.options["TopK"] = 6  # type: ignore[index]


@pytest.mark.parametrize(("text", "canonical"), [
    ("filename : \"a\"", "FileName:'a'"),
    ("DataSize >= 10 and not has FileType", "DataSize>=10 AND NOT HAS FileType"),
    ("FileName='a' OR FileDir='b' AND DataSize=3", "FileName='a' OR (FileDir='b' AND DataSize=3)"),
    ("NOT (FileName='a' OR FileDir='b')", "NOT (FileName='a' OR FileDir='b')"),
    ("(FileName='a' OR FileDir='b') AND TopK=5", "(FileName='a' OR FileDir='b') AND TopK=5"),
    ("FileName=\"it's\"", "FileName='it\\'s'"),
    ("FileUpdateTime>'2025-01-01'", "FileUpdateTime>'2025-01-01T00:00:00.000Z'"),
    ("SignMode='public' AND Content:'x' AND TopK=1",
     "Content:'x' AND TopK=1 AND SignMode='PUBLIC'"),
    ("", ""),
])
def test_canonical_text(text: str, canonical: str) -> None:
    assert to_dsl(parse(text)) == canonical


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_every_valid_case_round_trips_through_text(case) -> None:
    query = parse(case.text)
    assert parse(to_dsl(query)) == query


def test_depth_limit_is_exact() -> None:
    assert parse("NOT " * 63 + "FileName='a'")  # depth 64
    with pytest.raises(Exception, match="nested more than 64"):
        parse("NOT " * 64 + "FileName='a'")


def test_parse_is_reentrant_across_threads() -> None:
    """Parses running at once in many threads (an API server's workers) never see each
    other's state: every parse returns its own tree and none raises."""
    texts = [f"DataSize={i} OR (FileName='{i}' AND NOT Tags.all='t{i}')" for i in range(16)]
    start = threading.Barrier(len(texts))

    def work(i: int) -> list[Query]:
        start.wait()
        return [parse(texts[i]) for _ in range(200)]

    with ThreadPoolExecutor(len(texts)) as pool:
        futures = [pool.submit(work, i) for i in range(len(texts))]
        results = [f.result() for f in futures]  # re-raises a thread's exception here
    assert len(results) == len(texts)
    for i, trees in enumerate(results):
        want = Or((C("DataSize", "=", i),
                   And((C("FileName", "=", str(i)), Not(C("Tags.all", "=", f"t{i}"))))))
        assert len(trees) == 200 and all(q.filter == want for q in trees)


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse(b"FileName='a'")  # type: ignore[arg-type]


def test_package_docstring_example() -> None:
    assert doctest.testmod(query).failed == 0
