"""Bind a raw tree to the schema: check attributes, operators and values; lift options out.

``analyze(tree)`` turns a parsed tree into the ``Query`` envelope: semantic and option
conditions (only allowed AND-ed at the top level) move into ``Query.semantic`` /
``Query.options``; everything else is bound by ``bind_filter``, which canonicalises attribute
names and values (dates become ``YYYY-MM-DDTHH:MM:SS.mmmZ`` UTC) and is idempotent, so it also
validates trees that arrive as JSON.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from . import schema
from .ast import (And, Compare, Const, Has, Node, Not, Op, Or, Query, Semantic, Span, Value, and_,
                  walk)
from .errors import DslSemanticError, DslSyntaxError
from .schema import Attribute, Role, Type

# Where a lifted row's value goes: Query.semantic field names.
SEMANTIC_FIELDS = {"Content": "text", "QueryImage": "image", "QueryAudio": "audio"}


def _err(code: str, message: str, span: Span | None, expected: tuple[str, ...] = ()) -> Exception:
    return DslSemanticError(code, message, span=span, expected=expected)


def suggest(name: str, candidates: list[str]) -> str | None:
    """The closest candidate to a misspelt name (case-insensitive), if any is close enough."""
    folded = {c.casefold(): c for c in candidates}
    hits = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[hits[0]] if hits else None


def _attribute_names() -> list[str]:
    return [a.name for a in schema.ATTRIBUTES if a.type is not Type.META] + [
        f"{schema.META_PREFIX}.<key>"]


def resolve(name: str, span: Span | None) -> tuple[Attribute, str]:
    """The schema row and canonical name of an attribute, or a semantic error."""
    found = schema.lookup(name)
    if found is not None:
        row, canonical = found
        if row.type is Type.META:
            _check_meta_path(canonical, span)
        return found
    for known, why in schema.NOT_QUERYABLE.items():
        if known.casefold() == name.casefold():
            raise _err("not-queryable", f"{known} cannot be queried: {why}", span)
    if name.casefold() == schema.META_PREFIX.casefold():
        raise _err("bad-meta-key", "MetaAttributes needs a key: MetaAttributes.<key>", span)
    hint = suggest(name, _attribute_names())
    more = f"; did you mean '{hint}'?" if hint else ""
    raise _err("unknown-attribute", f"unknown attribute '{name}'{more}", span,
               (hint,) if hint else ())


def _check_meta_path(name: str, span: Span | None) -> None:
    path = schema.meta_path(name)
    if not path or not all(schema.META_KEY.match(k) for k in path):
        raise _err("bad-meta-key", f"'{name}': MetaAttributes keys must be identifiers "
                   "([A-Za-z_][A-Za-z0-9_]*), joined by '.'", span)


# ---------------------------------------------------------------------------------------------
# values

def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(value: Value, name: str, span: Span | None) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        raise _err("bad-value", f"{name}: number out of range", span)
    if isinstance(value, int) and not schema.INT64[0] <= value <= schema.INT64[1]:
        raise _err("bad-value", f"{name}: number out of the 64-bit range", span)
    return value


def _check_date(value: Value, name: str, span: Span | None) -> str:
    ms = schema.parse_date(value) if isinstance(value, str) else None
    if ms is not None:
        try:
            return schema.format_date(ms)
        except OverflowError:
            pass
    raise _err("bad-date", f"{name} takes a quoted ISO-8601 date such as "
               "'2025-02-28T00:00:00Z' (millisecond precision at most)", span)


def check_value(row: Attribute, name: str, op: Op, value: Value, span: Span | None) -> Value:
    """Check a comparison value against the row's type; returns the canonical value."""
    if row.type is Type.DATE:
        return _check_date(value, name, span)
    if row.type is Type.META:
        if op.is_range and not _is_number(value):
            raise _err("type-mismatch", f"range on {name} needs a number", span, ("a number",))
        return (_check_number(value, name, span) if _is_number(value) else
                _check_string(value, name, span) if isinstance(value, str) else value)
    if row.type is Type.NUMBER:
        if not _is_number(value):
            raise _err("type-mismatch", f"{name} takes an unquoted number", span, ("a number",))
        return _check_number(value, name, span)
    if not isinstance(value, str):
        raise _err("type-mismatch", f"{name} takes a quoted string", span, ("a quoted string",))
    # The semantic inputs and options (an inline QueryImage, say) are not matched in SQL.
    return _check_string(value, name, span) if row.role is Role.FILTER else value


def _check_string(value: str, name: str, span: Span | None) -> str:
    """A filter value every engine can hold and compare the same way: no NUL (PostgreSQL
    text cannot hold it, SQLite's LIKE stops at it), no lone surrogate (not UTF-8), and short
    enough for SQLite's LIKE pattern limit with room to spare."""
    if len(value) > schema.MAX_VALUE_LENGTH:
        raise _err("value-too-long", f"{name}: a value may have at most "
                   f"{schema.MAX_VALUE_LENGTH} characters, not {len(value)}", span)
    if "\x00" in value:
        raise _err("bad-value", f"{name}: a value cannot contain the NUL character", span)
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise _err("bad-value", f"{name}: a value cannot contain a lone surrogate "
                   "(it is not valid Unicode text)", span)
    return value


def _option_value(row: Attribute, value: Value, span: Span | None) -> Value:
    value = check_value(row, row.name, Op.EQ, value, span)
    if row.name in schema.INT_OPTIONS and not isinstance(value, int):
        raise _err("type-mismatch", f"{row.name} takes an integer", span, ("an integer",))
    if row.type is Type.NUMBER and row.name not in schema.INT_OPTIONS:
        value = float(value)
    if row.bounds and not row.bounds[0] <= value <= row.bounds[1]:  # type: ignore[operator]
        lo, hi = row.bounds
        raise _err("bad-value", f"{row.name} must be between {lo:g} and {hi:g}", span)
    if row.choices:
        canon = {c.casefold(): c for c in row.choices}.get(str(value).casefold())
        if canon is None:
            raise _err("bad-value", f"{row.name} must be one of {', '.join(row.choices)}", span,
                       row.choices)
        value = canon
    if row.pattern and not re.fullmatch(row.pattern, str(value)):
        raise _err("bad-value", f"{row.name}: {value!r} is not a valid value", span)
    return value


# ---------------------------------------------------------------------------------------------
# filter binding


def check_depth(tree: Node, limit: int = schema.MAX_DEPTH) -> None:
    """Refuse trees nested deeper than ``limit`` (code ``too-deep``), counted iteratively.

    The LALR parse is iterative, but everything after it (binding, printing, ``==``) is
    recursive, so a deep tree must be stopped before any of that.
    """
    for node, level in walk(tree):
        if level > limit:
            raise DslSyntaxError("too-deep", f"the query is nested more than {limit} levels "
                                 "deep", span=node.span)

def _op_error(row: Attribute, name: str, what: str, span: Span | None) -> Exception:
    allowed = schema.op_names(row.ops) + (", HAS" if row.has else "")
    return _err("op-not-allowed", f"{what} is not allowed on {name}: {row.type.value} "
                f"attribute {name} allows {allowed or 'nothing'}", span)


def _top_level_error(row: Attribute, span: Span | None) -> Exception:
    return _err("top-level-only", f"{row.name} can only be AND-ed at the top level of the "
                "query (not under OR or NOT)", span)


def _bind_compare(node: Compare) -> Compare:
    row, name = resolve(node.attr, node.attr_span or node.span)
    if row.role is not Role.FILTER:
        raise _top_level_error(row, node.span)
    if node.op not in row.ops:
        raise _op_error(row, name, f"'{node.op.value}'", node.span)
    value = check_value(row, name, node.op, node.value, node.value_span or node.span)
    return Compare(name, node.op, value, span=node.span, attr_span=node.attr_span,
                   value_span=node.value_span)


def _bind_has(node: Has) -> Has:
    row, name = resolve(node.attr, node.attr_span or node.span)
    if not row.has:
        raise _op_error(row, name, "HAS", node.span)
    return Has(name, span=node.span, attr_span=node.attr_span)


def bind_filter(node: Node) -> Node:
    """Check and canonicalise a filter tree (no options allowed in it). Idempotent."""
    match node:
        case And(items=items, span=span):
            return And(tuple(bind_filter(i) for i in items), span=span)
        case Or(items=items, span=span):
            return Or(tuple(bind_filter(i) for i in items), span=span)
        case Not(item=item, span=span):
            return Not(bind_filter(item), span=span)
        case Has():
            return _bind_has(node)
        case Compare():
            return _bind_compare(node)
        case Const():
            return node
    raise TypeError(f"not a query node: {node!r}")


# ---------------------------------------------------------------------------------------------
# lifting

def _lifted_row(node: Node) -> Attribute | None:
    if not isinstance(node, Compare):
        return None
    found = schema.lookup(node.attr)
    return found[0] if found and found[0].role is not Role.FILTER else None


def _lift(node: Compare, row: Attribute, out: dict[str, Value]) -> None:
    if node.op not in row.ops:
        raise _op_error(row, row.name, f"'{node.op.value}'", node.span)
    if row.name in out:
        raise _err("duplicate-option", f"{row.name} is given more than once", node.span)
    out[row.name] = _option_value(row, node.value, node.value_span or node.span)


def analyze(tree: Node) -> Query:
    """Bind a parsed tree and lift top-level semantic/option conditions into the envelope."""
    items = tree.items if isinstance(tree, And) else (tree,)
    lifted: dict[str, Value] = {}
    rest: list[Node] = []
    for item in items:
        row = _lifted_row(item)
        if row is None:
            rest.append(item)
        else:
            _lift(item, row, lifted)  # type: ignore[arg-type]
    return make_query(bind_filter(and_(*rest, span=tree.span)), lifted)


def make_query(filter_: Node, lifted: Mapping[str, Value]) -> Query:
    """Split lifted values into ``Query.semantic`` and ``Query.options``."""
    semantic = {SEMANTIC_FIELDS[k]: v for k, v in lifted.items() if k in SEMANTIC_FIELDS}
    options = {k: v for k, v in lifted.items() if k not in SEMANTIC_FIELDS}
    return Query(filter_, Semantic(**semantic) if semantic else None, options)  # type: ignore[arg-type]


def check_query(query: Query) -> Query:
    """Validate an envelope built elsewhere (JSON, hand-built); returns it canonicalised."""
    check_depth(query.filter)
    lifted: dict[str, Any] = {}
    if query.semantic is not None:
        for attr, field_name in SEMANTIC_FIELDS.items():
            value = getattr(query.semantic, field_name)
            if value is not None:
                lifted[attr] = _option_value(schema.BY_NAME[attr], value, None)
    for key, value in query.options.items():
        row = schema.BY_NAME.get(key)
        if row is None or row.role in (Role.FILTER, Role.SEMANTIC):
            hint = suggest(key, [a.name for a in schema.ATTRIBUTES if a.role is Role.OPTION])
            raise _err("unknown-option", f"unknown option {key!r}", None, (hint,) if hint else ())
        lifted[key] = _option_value(row, value, None)
    return make_query(bind_filter(query.filter), lifted)
