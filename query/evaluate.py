"""The reference evaluator (the oracle): a bound filter over in-memory rows, per SEMANTICS.md.

Rows have the shape of ``FileMeta.to_record()``: PAI keys, times as UTC epoch milliseconds,
``Tags`` as ``{"ai": [...], "user": [...], "user-delete-ai-tags": [...]}``. Logic is
two-valued: a comparison on a missing or null value is false, and ``NOT`` flips it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import schema
from .ast import And, Compare, Const, Has, Node, Not, Op, Or, Query, Value
from .schema import Attribute, Type

Row = Mapping[str, Any]
_MISSING = object()
CMP: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq, Op.GT: operator.gt, Op.GE: operator.ge, Op.LT: operator.lt,
    Op.LE: operator.le,
}
DEFAULT_STATUS = "ACTIVE"


def effective_tags(tags: Mapping[str, list[str]]) -> list[str]:
    """``Tags.all``: PAI's literal formula (ai ∪ user) − user-delete-ai-tags.

    A tag in ``user-delete-ai-tags`` stays hidden even when the user also added it by hand.
    """
    deleted = set(tags.get("user-delete-ai-tags") or ())
    union = dict.fromkeys([*(tags.get("ai") or ()), *(tags.get("user") or ())])
    return [t for t in union if t not in deleted]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _lookup(row_attr: Attribute, name: str, row: Row) -> Any:
    value = row.get(row_attr.row_key or "", None)
    if row_attr.tag_group is not None:
        tags = value or {}
        return effective_tags(tags) if row_attr.tag_group == "all" else list(
            tags.get(row_attr.tag_group) or ())
    if row_attr.type is Type.META:
        for key in schema.meta_path(name):
            if not isinstance(value, Mapping) or key not in value:
                return _MISSING
            value = value[key]
    return value


def _resolve(name: str) -> Attribute:
    found = schema.lookup(name)
    if found is None or found[1] != name:
        raise ValueError(f"unbound attribute {name!r}: analyze the query first")
    return found[0]


def _has(node: Has, row: Row) -> bool:
    row_attr = _resolve(node.attr)
    value = _lookup(row_attr, node.attr, row)
    if row_attr.tag_group is not None:
        return len(value) > 0
    return value is not _MISSING and value is not None


def _typed(row_attr: Attribute, want: Value, value: Any) -> Any:
    """The row value if it has the type the comparison needs, else ``_MISSING``."""
    if row_attr.type is Type.DATE:
        return value if _is_number(value) else _MISSING
    if _is_number(want):
        return value if _is_number(value) else _MISSING
    return value if isinstance(value, str) else _MISSING


def _compare(node: Compare, row: Row) -> bool:
    row_attr = _resolve(node.attr)
    value = _lookup(row_attr, node.attr, row)
    if row_attr.tag_group is not None:
        return node.value in value
    want: Value = node.value
    if row_attr.type is Type.DATE:
        want = schema.date_ms(str(want))
    value = _typed(row_attr, want, value)
    if value is _MISSING:
        return False
    if node.op is Op.MATCH:
        return str(want).casefold() in value.casefold()
    return CMP[node.op](value, want)


def _eval(node: Node, row: Row) -> bool:
    match node:
        case And(items=items):
            return all(_eval(i, row) for i in items)
        case Or(items=items):
            return any(_eval(i, row) for i in items)
        case Not(item=item):
            return not _eval(item, row)
        case Has():
            return _has(node, row)
        case Compare():
            return _compare(node, row)
        case Const(value=value):
            return value
    raise TypeError(f"not a query node: {node!r}")


def in_scope(query: Query, row: Row) -> bool:
    """The Status scope: ACTIVE unless the query says ``Status='DELETED'`` or ``'ALL'``."""
    status = query.option("Status", DEFAULT_STATUS)
    return status == "ALL" or row.get("Status", DEFAULT_STATUS) == status


def evaluate(query: Query | Node, row: Row) -> bool:
    """Whether ``row`` matches a bound filter (or a ``Query``: its Status scope and filter)."""
    if isinstance(query, Query):
        return in_scope(query, row) and _eval(query.filter, row)
    return _eval(query, row)


def select_rows(query: Query | Node, rows: Iterable[Row]) -> list[Row]:
    """The rows that match, in input order."""
    return [r for r in rows if evaluate(query, r)]
