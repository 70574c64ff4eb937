"""Versioned AST JSON: what travels through XCom and into saved searches (never SQL).

``to_json(q)`` gives ``{"ast_version": 1, "filter": {...}, "semantic": ..., "options": {...}}``
without spans. ``from_json`` decodes through an allowlist of node types and keys, rejects
anything else with code ``bad-ast-json``, then validates the tree against the schema exactly
like parsed text (so identifiers reaching a compiler always come from the schema).
"""

from __future__ import annotations

import json
from typing import Any

from .analyze import check_query
from .ast import And, Compare, Const, Has, Node, Not, Op, Or, Query, Semantic
from .errors import QueryJsonError
from .schema import MAX_DEPTH

AST_VERSION = 1
_NODE_KEYS = {
    "And": {"items"}, "Or": {"items"}, "Not": {"item"}, "Has": {"attr"},
    "Compare": {"attr", "op", "value"}, "Const": {"value"},
}


def node_to_json(node: Node) -> dict[str, Any]:
    """JSON-ready dict of a filter tree (no spans)."""
    match node:
        case And(items=items) | Or(items=items):
            return {"type": type(node).__name__, "items": [node_to_json(i) for i in items]}
        case Not(item=item):
            return {"type": "Not", "item": node_to_json(item)}
        case Has(attr=attr):
            return {"type": "Has", "attr": attr}
        case Compare(attr=attr, op=op, value=value):
            return {"type": "Compare", "attr": attr, "op": op.value, "value": value}
        case Const(value=value):
            return {"type": "Const", "value": value}
    raise TypeError(f"not a query node: {node!r}")


def to_json(query: Query | Node) -> dict[str, Any]:
    """The versioned JSON envelope of a query (a bare tree is wrapped as a query's filter)."""
    if not isinstance(query, Query):
        query = Query(query)
    semantic = None
    if query.semantic is not None:
        semantic = {k: v for k, v in (("text", query.semantic.text),
                                      ("image", query.semantic.image),
                                      ("audio", query.semantic.audio)) if v is not None}
    return {"ast_version": AST_VERSION, "filter": node_to_json(query.filter),
            "semantic": semantic, "options": dict(query.options)}


def _bad(message: str) -> QueryJsonError:
    return QueryJsonError("bad-ast-json", message)


def _is_value(value: object) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _node(data: Any, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise QueryJsonError("too-deep", f"the tree is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(data, dict) or data.get("type") not in _NODE_KEYS:
        raise _bad(f"not a node: {str(data)[:80]}")
    kind = data["type"]
    if set(data) - {"type"} != _NODE_KEYS[kind]:
        raise _bad(f"{kind} takes exactly the keys {sorted(_NODE_KEYS[kind])}")
    try:
        return _build(kind, data, depth)
    except (TypeError, ValueError) as err:
        if isinstance(err, QueryJsonError):
            raise
        raise _bad(f"bad {kind}: {err}") from None


def _build(kind: str, data: dict[str, Any], depth: int) -> Node:
    if kind in ("And", "Or"):
        if not isinstance(data["items"], list):
            raise TypeError("items must be a list")
        items = tuple(_node(i, depth + 1) for i in data["items"])
        return And(items) if kind == "And" else Or(items)
    if kind == "Not":
        return Not(_node(data["item"], depth + 1))
    if kind == "Const":
        if not isinstance(data["value"], bool):
            raise TypeError("value must be true or false")
        return Const(data["value"])
    if not isinstance(data["attr"], str):
        raise TypeError("attr must be a string")
    if kind == "Has":
        return Has(data["attr"])
    if not _is_value(data["value"]):
        raise TypeError("value must be a string or a number")
    return Compare(data["attr"], Op(data["op"]), data["value"])


def _semantic(data: Any) -> Semantic | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not set(data) <= {"text", "image", "audio"} or not all(
            isinstance(v, str) for v in data.values()):
        raise _bad("semantic must be null or an object with string 'text' / 'image' / 'audio'")
    return Semantic(**data) if data else None


def from_json(data: dict[str, Any] | str) -> Query:
    """Decode and validate the envelope made by :func:`to_json` (a dict or its JSON text).

    Raises:
        QueryJsonError: unknown ``ast_version``, node type or key, malformed values.
        DslSemanticError: a well-formed tree that breaks the schema (unknown attribute...).
    """
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as err:
            raise _bad(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise _bad("the envelope must be a JSON object")
    version = data.get("ast_version")
    if type(version) is not int or version != AST_VERSION:
        raise _bad(f"unsupported ast_version {version!r} (this engine reads {AST_VERSION})")
    if not set(data) <= {"ast_version", "filter", "semantic", "options"} or "filter" not in data:
        raise _bad("the envelope takes ast_version, filter, semantic and options")
    options = {} if data.get("options") is None else data["options"]
    if not isinstance(options, dict) or not all(_is_value(v) for v in options.values()):
        raise _bad("options must be an object of strings and numbers")
    query = Query(_node(data["filter"], 1), _semantic(data.get("semantic")), options)
    return check_query(query)
