"""The request-parameter form of ListDatasetFileMetas, built into the same AST and envelope.

Each filter parameter is a row of ``FILTER_PARAMS`` that turns its value(s) into DSL nodes; all
conditions are AND-ed, in table order. ``QueryTags*`` apply to ``Tags.all``. List values are
lists or comma-separated strings (PAI's ``style=simple``; items are stripped, empty items
dropped). Options map onto the same names the DSL uses. ``QueryExpression`` combines with the
paging parameters (``PAGING_PARAMS``: they say which page, not which files) and ``Status``
(the scope), unless the expression sets the same option; with any other query parameter it is
refused (``conflicting-params``); see SEMANTICS.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from . import schema
from .analyze import analyze, suggest
from .ast import Compare, Node, Not, Op, Query, Value, and_, or_
from .errors import DslSemanticError, QueryError
from .parser import parse

Build = Callable[[list[str]], Node]
ROUTING = frozenset({"DatasetId", "DatasetVersion", "WorkspaceId"})
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")


def _eq(attr: str, op: Op = Op.EQ) -> Callable[[str], Node]:
    return lambda v: Compare(attr, op, v)


def _all_of(attr: str) -> Build:
    return lambda vs: and_(*map(_eq(attr), vs))


def _any_of(attr: str) -> Build:
    return lambda vs: or_(*map(_eq(attr), vs))


def _none_of(attr: str) -> Build:
    return lambda vs: and_(*(Not(_eq(attr)(v)) for v in vs))


def _single(attr: str, op: Op) -> Build:
    return lambda vs: _eq(attr, op)(vs[0])


# (parameter, takes a list, builder). Start/End windows are inclusive at both ends.
FILTER_PARAMS: tuple[tuple[str, bool, Build], ...] = (
    ("DatasetFileMetaIds", True, _any_of("DatasetFileMetaId")),
    ("QueryFileName", False, _single("FileName", Op.MATCH)),
    ("QueryFileDir", False, _single("FileDir", Op.MATCH)),
    ("QueryFileTypeIncludeAny", True, _any_of("FileType")),
    ("QueryContentTypeIncludeAny", True, _any_of("ContentType")),
    ("StartFileUpdateTime", False, _single("FileUpdateTime", Op.GE)),
    ("EndFileUpdateTime", False, _single("FileUpdateTime", Op.LE)),
    ("StartTagUpdateTime", False, _single("TagUpdateTime", Op.GE)),
    ("EndTagUpdateTime", False, _single("TagUpdateTime", Op.LE)),
    ("QueryTagsIncludeAll", True, _all_of("Tags.all")),
    ("QueryTagsIncludeAny", True, _any_of("Tags.all")),
    ("QueryTagsExclude", True, _none_of("Tags.all")),
)

# Parameter -> the DSL attribute it sets (semantic part, Status scope or option).
OPTION_PARAMS: dict[str, str] = {
    "QueryText": "Content", "QueryImage": "QueryImage", "Status": "Status", "TopK": "TopK",
    "ScoreThreshold": "ScoreThreshold", "QueryType": "QueryType", "SortBy": "SortBy",
    "Order": "Order", "MaxResults": "MaxResults", "PageSize": "MaxResults",
    "NextToken": "NextToken", "ThumbnailMode": "ThumbnailMode", "IndexContent": "IndexContent",
    "TextFactor": "TextFactor", "ImageFactor": "ImageFactor", "AudioFactor": "AudioFactor",
    "QueryAudio": "QueryAudio",
}
# What an SDK sends beside QueryExpression to page through it (PAI's SDK: MaxResults).
PAGING_PARAMS = ("MaxResults", "PageSize", "NextToken", "Order", "SortBy", "ThumbnailMode")
# Options that combine with QueryExpression as the paging ones do: ``Status`` picks the scope
# (ACTIVE, DELETED or ALL rows) the way DatasetVersion picks the version.
COMBINABLE_PARAMS = (*PAGING_PARAMS, "Status")
UNSUPPORTED = {"QueryVideo": "video queries are not supported"}
KNOWN = ROUTING | {p for p, _, _ in FILTER_PARAMS} | set(OPTION_PARAMS) | set(UNSUPPORTED) | {
    "QueryExpression"}


def _err(code: str, message: str, expected: tuple[str, ...] = ()) -> DslSemanticError:
    return DslSemanticError(code, message, expected=expected)


def _items(value: Any) -> list[str]:
    raw = value.split(",") if isinstance(value, str) else list(value)
    return [str(v).strip() for v in raw if str(v).strip()]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple)) and not _items(value))


def _option_value(attr: str, value: Any) -> Value:
    if schema.BY_NAME[attr].type is schema.Type.NUMBER and isinstance(value, str):
        text = value.strip()
        if not _NUMBER.match(text):
            raise _err("type-mismatch", f"{attr} takes a number, not {value!r}", ("a number",))
        return float(text) if any(c in text for c in ".eE") else int(text)
    return value if isinstance(value, (int, float)) else str(value)


def _check(param: str, node: Node) -> Node:
    """Validate one parameter's nodes so an error names the parameter."""
    try:
        analyze(node)
    except QueryError as err:
        err.message = f"{param}: {err.message}"
        err.args = (err.message,)
        raise
    return node


def _check_names(params: Mapping[str, Any]) -> None:
    for name in params:
        if name in UNSUPPORTED:
            raise _err("unsupported-param", f"{name}: {UNSUPPORTED[name]}")
        if name not in KNOWN:
            hint = suggest(name, sorted(KNOWN))
            more = f"; did you mean '{hint}'?" if hint else ""
            raise _err("unknown-param", f"unknown parameter '{name}'{more}",
                       (hint,) if hint else ())


def _lifted(given: dict[str, Any]) -> list[Node]:
    if "PageSize" in given and "MaxResults" in given:  # PageSize is deprecated: MaxResults wins
        given = {k: v for k, v in given.items() if k != "PageSize"}
    if str(given.get("QueryType", "")).upper() == "TAG":  # QueryText joins QueryTagsIncludeAll
        given.pop("QueryText", None)
    nodes = []
    for param, attr in OPTION_PARAMS.items():
        if param in given:
            op = Op.MATCH if attr == "Content" else Op.EQ
            value = given[param]
            node = Compare(attr, op, value if attr == "Content" else _option_value(attr, value))
            nodes.append(_check(param, node))
    return nodes


def _expression_and_paging(given: dict[str, Any]) -> Query:
    others = sorted(set(given) - {"QueryExpression", *COMBINABLE_PARAMS})
    if others:
        raise _err("conflicting-params", "QueryExpression cannot be combined with "
                   f"{', '.join(others)}: write them inside the expression")
    query = parse(str(given["QueryExpression"]))
    paging = analyze(and_(*_lifted({k: v for k, v in given.items() if k in COMBINABLE_PARAMS})))
    clash = sorted(set(paging.options) & set(query.options))
    if clash:
        raise _err("conflicting-params", f"{', '.join(clash)} is given both in QueryExpression "
                   "and as a parameter: give it once")
    return Query(query.filter, query.semantic, {**query.options, **paging.options})


def parse_params(params: Mapping[str, Any]) -> Query:
    """Build the ``Query`` of ListDatasetFileMetas request parameters (PAI names).

    Raises:
        DslSemanticError: unknown or unsupported parameter, bad value, or ``QueryExpression``
            combined with query parameters other than paging ones, or setting an option a
            paging parameter sets too (code ``conflicting-params``).
        DslSyntaxError: a malformed ``QueryExpression``.
    """
    _check_names(params)
    given = {k: v for k, v in params.items() if k not in ROUTING and not _blank(v)}
    if "QueryExpression" in given:
        return _expression_and_paging(given)
    if str(given.get("QueryType", "")).upper() == "TAG" and "QueryText" in given:
        tags = _items(given.get("QueryTagsIncludeAll") or []) + [str(given["QueryText"]).strip()]
        given["QueryTagsIncludeAll"] = tags
    nodes: list[Node] = []
    for param, is_list, build in FILTER_PARAMS:
        if param in given:
            values = _items(given[param]) if is_list else [str(given[param])]
            nodes.append(_check(param, build(values)))
    return analyze(and_(*nodes, *_lifted(given)))
