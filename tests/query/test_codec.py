"""Versioned AST JSON: round trips, exact shape, and refusal of anything unknown."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mmdm.query import (AST_VERSION, Compare, DslSemanticError, Op, Query, QueryJsonError,
                        from_json, parse, to_json)

from .cases import VALID


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_every_valid_case_round_trips(case) -> None:
    query = parse(case.text)
    assert from_json(to_json(query)) == query
    assert from_json(json.dumps(to_json(query))) == query


def test_exact_shape() -> None:
    q = parse("NOT HAS FileType AND (DataSize>=1 OR Tags.all='x') AND Content:'c' AND TopK=5")
    assert to_json(q) == {
        "ast_version": AST_VERSION,
        "filter": {"type": "And", "items": [
            {"type": "Not", "item": {"type": "Has", "attr": "FileType"}},
            {"type": "Or", "items": [
                {"type": "Compare", "attr": "DataSize", "op": ">=", "value": 1},
                {"type": "Compare", "attr": "Tags.all", "op": "=", "value": "x"},
            ]},
        ]},
        "semantic": {"text": "c"},
        "options": {"TopK": 5},
    }


def test_bare_tree_is_wrapped() -> None:
    tree = Compare("FileName", Op.EQ, "a")
    assert from_json(to_json(tree)) == Query(tree)


def test_json_is_canonicalised_like_text() -> None:
    data = {"ast_version": 1, "filter": {"type": "Compare", "attr": "fileupdatetime", "op": ">",
                                          "value": "2025-01-01"}, "options": {"Order": "asc"}}
    assert from_json(data) == parse("FileUpdateTime>'2025-01-01' AND Order='ASC'")


GOOD_FILTER: dict[str, Any] = {"type": "Has", "attr": "FileName"}
BAD_ENVELOPES: list[Any] = [
    [],
    "not json",
    {"filter": GOOD_FILTER},
    {"ast_version": 2, "filter": GOOD_FILTER},
    {"ast_version": "1", "filter": GOOD_FILTER},
    {"ast_version": True, "filter": GOOD_FILTER},
    {"ast_version": 1},
    {"ast_version": 1, "filter": GOOD_FILTER, "extra": 1},
    {"ast_version": 1, "filter": GOOD_FILTER, "options": []},
    {"ast_version": 1, "filter": GOOD_FILTER, "options": {"TopK": None}},
    {"ast_version": 1, "filter": GOOD_FILTER, "semantic": "text"},
    {"ast_version": 1, "filter": GOOD_FILTER, "semantic": {"text": 5}},
    {"ast_version": 1, "filter": {"type": "Xor", "items": []}},
    {"ast_version": 1, "filter": {"type": "Has", "attr": "FileName", "span": [0, 1]}},
    {"ast_version": 1, "filter": {"type": "Has"}},
    {"ast_version": 1, "filter": {"type": "Has", "attr": 5}},
    {"ast_version": 1, "filter": {"type": "And", "items": [GOOD_FILTER]}},
    {"ast_version": 1, "filter": {"type": "And", "items": GOOD_FILTER}},
    {"ast_version": 1, "filter": {"type": "And", "items": [
        {"type": "And", "items": [GOOD_FILTER, GOOD_FILTER]}, GOOD_FILTER]}},
    {"ast_version": 1, "filter": {"type": "Compare", "attr": "DataSize", "op": "!=", "value": 1}},
    {"ast_version": 1, "filter": {"type": "Compare", "attr": "DataSize", "op": "=", "value": True}},
    {"ast_version": 1, "filter": {"type": "Compare", "attr": "DataSize", "op": "=", "value": None}},
    {"ast_version": 1, "filter": {"type": "Const", "value": 1}},
    {"ast_version": 1, "filter": [GOOD_FILTER]},
]


@pytest.mark.parametrize("data", BAD_ENVELOPES, ids=range(len(BAD_ENVELOPES)))
def test_malformed_json_is_refused(data: Any) -> None:
    with pytest.raises(QueryJsonError) as info:
        from_json(data)
    assert info.value.code == "bad-ast-json"


def test_too_deep_json() -> None:
    node: dict[str, Any] = GOOD_FILTER
    for _ in range(100):
        node = {"type": "Not", "item": node}
    with pytest.raises(QueryJsonError) as info:
        from_json({"ast_version": 1, "filter": node})
    assert info.value.code == "too-deep"


@pytest.mark.parametrize(("filter_", "options", "code"), [
    ({"type": "Has", "attr": "Nope"}, {}, "unknown-attribute"),
    ({"type": "Compare", "attr": "TopK", "op": "=", "value": 5}, {}, "top-level-only"),
    ({"type": "Compare", "attr": "FileName", "op": ">", "value": "a"}, {}, "op-not-allowed"),
    ({"type": "Compare", "attr": "MetaAttributes.x;drop", "op": "=", "value": 1}, {},
     "bad-meta-key"),
    (GOOD_FILTER, {"TopKK": 5}, "unknown-option"),
    (GOOD_FILTER, {"Content": "x"}, "unknown-option"),
    (GOOD_FILTER, {"TopK": 0}, "bad-value"),
])
def test_schema_violations_in_json(filter_: dict, options: dict, code: str) -> None:
    with pytest.raises(DslSemanticError) as info:
        from_json({"ast_version": 1, "filter": filter_, "options": options})
    assert info.value.code == code


def test_no_spans_in_json() -> None:
    text = json.dumps(to_json(parse("FileName='a' AND NOT HAS FileDir")))
    assert "span" not in text
