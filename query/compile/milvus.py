"""Compile a bound filter to a Milvus boolean expression over PAI's index table.

Values are written into the expression as escaped literals, not ``{p0}`` + ``filter_params``:
Milvus Lite refuses ``filter_params`` (code 6, "unexpected character '{'"), so one literal form
serves Lite and servers alike. ``quote`` escapes ``\\`` and ``"`` (and CR, LF, TAB, which both
parsers refuse raw), which is all a double-quoted Milvus string needs to stay one token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..ast import And, Compare, Const, Node, Not, Op, Or, Query
from . import vector

BACKEND = "milvus"
SUPPORTED: Mapping[str, frozenset[Op]] = vector.SUPPORTED
CMP: dict[Op, str] = {Op.EQ: "==", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}
MATCH_NOTHING = "false"  # only ever the whole expression; folding removes inner constants
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True)
class CompiledMilvus:
    """A Milvus filter expression; ``""`` means no condition (every row of the index set)."""

    expr: str


def quote(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def _literal(value: str | int | float) -> str:
    return quote(value) if isinstance(value, str) else repr(value)


def _group(node: Node) -> str:
    text = _expr(node)
    return f"({text})" if isinstance(node, (And, Or)) else text


def _or(items: tuple[Node, ...]) -> str:
    same = vector.same_field_values(items)
    if same is not None:  # one "in" instead of a chain of "or": shorter and one filter pass
        attr, values = same
        field = vector.INDEX_FIELDS[attr]
        return f"{field} in [{', '.join(quote(v) for v in dict.fromkeys(values))}]"
    return " or ".join(_group(i) for i in items)


def _expr(node: Node) -> str:
    match node:
        case And(items=items):
            return " and ".join(_group(i) for i in items)
        case Or(items=items):
            return _or(items)
        case Not(item=item):
            return f"not ({_expr(item)})"
        case Compare(attr=attr, op=op, value=value):
            return f"{vector.INDEX_FIELDS[attr]} {CMP[op]} {_literal(value)}"
        case Const(value=value):
            return "" if value else MATCH_NOTHING
    raise vector.unsupported(node, BACKEND)


def compile_milvus(query: Query | Node) -> CompiledMilvus:
    """The Milvus expression of a bound query's filter (ANDed by the store with its scope).

    Raises:
        UnsupportedFeatureError: anything outside ``SUPPORTED``, or a Status other than ACTIVE.
    """
    return CompiledMilvus(_expr(vector.prepare(query, BACKEND)))
