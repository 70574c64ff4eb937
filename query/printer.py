"""``to_dsl()``: the canonical DSL text of a query; ``parse(to_dsl(q)) == q``.

Canonical form: single-quoted strings (``\\`` and ``'`` escaped), no spaces around operators,
upper-case keywords, parentheses only where precedence (NOT > AND > OR) needs them, then the
semantic part and the options in ``schema.ATTRIBUTES`` order.
"""

from __future__ import annotations

from . import schema
from .analyze import SEMANTIC_FIELDS
from .ast import And, Compare, Const, Has, Node, Not, Or, Query, Value
from .errors import UnsupportedFeatureError

_LEVEL = {Or: 1, And: 2, Not: 3}  # anything else binds tightest (4)


def quote(text: str) -> str:
    """A single-quoted DSL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def format_value(value: Value) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a DSL value: {value!r}")
    return repr(value)


def _level(node: Node) -> int:
    return _LEVEL.get(type(node), 4)


def _wrap(node: Node, min_level: int) -> str:
    text = _node(node)
    return f"({text})" if _level(node) < min_level else text


def _node(node: Node) -> str:
    match node:
        case Or(items=items):
            return " OR ".join(_wrap(i, 3) for i in items)  # (a AND b) OR c: clearer
        case And(items=items):
            return " AND ".join(_wrap(i, 2) for i in items)
        case Not(item=item):
            return "NOT " + _wrap(item, 3)
        case Has(attr=attr):
            return f"HAS {attr}"
        case Compare(attr=attr, op=op, value=value):
            return f"{attr}{op.value}{format_value(value)}"
        case Const():
            raise UnsupportedFeatureError(
                "no-dsl-form", "a constant inside a tree has no DSL form", backend="dsl")
    raise TypeError(f"not a query node: {node!r}")


def to_dsl(query: Query | Node) -> str:
    """Canonical DSL text of a ``Query`` or a filter tree.

    Raises:
        UnsupportedFeatureError: the tree holds a ``Const`` other than a match-all filter.
    """
    if not isinstance(query, Query):
        query = Query(query)
    parts = []
    if query.filter != Const(True):
        text = _node(query.filter)
        has_more = query.semantic is not None or bool(query.options)
        parts.append(f"({text})" if has_more and isinstance(query.filter, Or) else text)
    if query.semantic is not None:
        for attr, field_name in SEMANTIC_FIELDS.items():
            value = getattr(query.semantic, field_name)
            if value is not None:
                op = next(iter(schema.BY_NAME[attr].ops)).value
                parts.append(f"{attr}{op}{quote(value)}")
    for row in schema.ATTRIBUTES:
        if row.name in query.options:
            parts.append(f"{row.name}={format_value(query.options[row.name])}")
    return " AND ".join(parts)
