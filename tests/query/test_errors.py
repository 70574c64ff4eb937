"""Errors are data: codes, spans, caret rendering, did-you-mean, depth, error classes."""

from __future__ import annotations

import contextlib

import pytest

from mmdm.query import (Compare, DslSemanticError, DslSyntaxError, Node, Not, Op, Query, QueryError,
                        UnsupportedFeatureError, check_query, compile_sql, parse)
from mmdm.query.ast import Span

from .cases import ERRORS, Case

SYNTAX_CODES = {"unexpected-eof", "unexpected-token", "bad-character", "unterminated-string",
                "bad-escape", "too-deep", "too-long"}


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_case(case: Case) -> None:
    with pytest.raises(QueryError) as info:
        parse(case.text)
    err = info.value
    assert err.code == case.error
    assert err.span == Span(*case.span) if case.span else err.span is not None
    expected_class = DslSyntaxError if case.error in SYNTAX_CODES else DslSemanticError
    assert type(err) is expected_class
    assert isinstance(err, ValueError)
    assert err.source == case.text
    assert f"[{case.error}]" in err.render()


def test_caret_rendering() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse("DataSize >= ) AND HAS SemanticIndexJobId")
    assert info.value.render() == (
        "1:13: unexpected ')'; expected a quoted string, a number [unexpected-token]\n"
        "DataSize >= ) AND HAS SemanticIndexJobId\n"
        "            ^"
    )


def test_caret_on_a_later_line_spans_the_token() -> None:
    text = "FileName='a'\nAND FileUpdateTime='2025-01-01'\nAND HAS FileDir"
    with pytest.raises(DslSemanticError) as info:
        parse(text)
    lines = info.value.render().split("\n")
    assert lines[0].startswith("2:5: '=' is not allowed on FileUpdateTime")
    assert lines[1:] == ["AND FileUpdateTime='2025-01-01'", "    " + "^" * 27]
    assert info.value.position() == (2, 5)


def test_caret_at_end_of_input() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse("FileName='a' AND")
    assert info.value.render().endswith("FileName='a' AND\n                ^")
    assert info.value.expected == ("an attribute name", "NOT", "HAS", "'('")


def test_expected_tokens_after_attribute() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse("FileName 'a'")
    assert info.value.expected == ("':'", "'='", "'>'", "'>='", "'<'", "'<='")
    assert "expected ':', '='" in info.value.message


@pytest.mark.parametrize(("text", "hint"), [
    ("FileNme='a'", "FileName"),
    ("FileNames:'a'", "FileName"),
    ("filedirs:'a'", "FileDir"),
    ("Tags.al='a'", "Tags.all"),
    ("Tags.users='a'", "Tags.user"),
    ("HAS SemanticIndexJob", "SemanticIndexJobId"),
    ("DataSise>1", "DataSize"),
    ("FileUpdatedTime>'2025-01-01'", "FileUpdateTime"),
    ("Descripton:'x'", "Description"),
    ("MetaAttribute.x=1", "MetaAttributes.<key>"),
])
def test_did_you_mean(text: str, hint: str) -> None:
    with pytest.raises(DslSemanticError) as info:
        parse(text)
    assert info.value.code == "unknown-attribute"
    assert info.value.expected == (hint,)
    assert f"did you mean '{hint}'?" in info.value.message


def test_no_suggestion_for_far_names() -> None:
    with pytest.raises(DslSemanticError) as info:
        parse("Xyzzy='a'")
    assert info.value.expected == () and "did you mean" not in info.value.message


def test_op_error_names_the_rule() -> None:
    with pytest.raises(DslSemanticError) as info:
        parse("FileUpdateTime='2025-01-01'")
    assert "DATE attribute FileUpdateTime allows '>', '>=', '<', '<=', HAS" in info.value.message
    with pytest.raises(DslSemanticError) as info:
        parse("FileName='a' OR Status='ACTIVE'")
    assert "top level" in info.value.message and info.value.code == "top-level-only"


def test_deep_alternating_nesting_is_refused() -> None:
    text = "FileName='x'"
    for i in range(80):
        text = f"FileName='{i}' {'AND' if i % 2 else 'OR'} ({text})"
    with pytest.raises(DslSyntaxError) as info:
        parse(text)
    assert info.value.code == "too-deep"


def test_very_deep_input_does_not_blow_the_stack() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse("NOT " * 20000 + "FileName='a'")
    assert info.value.code == "too-deep"


def test_too_long() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse("FileName='" + "a" * 100_001 + "'")
    assert info.value.code == "too-long"


def test_to_dict() -> None:
    with pytest.raises(QueryError) as info:
        parse("FileNme='x'")
    assert info.value.to_dict() == {
        "kind": "semantic", "code": "unknown-attribute",
        "message": "unknown attribute 'FileNme'; did you mean 'FileName'?",
        "span": [0, 7], "expected": ["FileName"],
    }


def test_errors_accept_context_and_chaining() -> None:
    err = DslSyntaxError("x", "y")
    with contextlib.suppress(DslSyntaxError):
        try:
            raise KeyError("inner")
        except KeyError:
            raise err  # noqa: B904
    assert isinstance(err.__context__, KeyError)


def test_render_without_position() -> None:
    assert DslSemanticError("bad-value", "nope").render() == "nope [bad-value]"


def test_unsupported_dialect() -> None:
    with pytest.raises(UnsupportedFeatureError) as info:
        compile_sql(parse("FileName='a'"), "mysql", "d", "v1")
    assert info.value.backend == "mysql" and info.value.to_dict()["backend"] == "mysql"


def test_hand_built_deep_tree_is_refused_by_check_query() -> None:
    tree: Node = Compare("FileName", Op.EQ, "a")
    for _ in range(100):
        tree = Not(tree)
    with pytest.raises(DslSyntaxError) as info:
        check_query(Query(tree))
    assert info.value.code == "too-deep"
