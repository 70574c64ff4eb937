"""The query AST: frozen dataclasses, n-ary And/Or, positions excluded from equality.

Trees built by hand equal parsed ones: spans are metadata (``compare=False``). Nodes are never
mutated; rewrites build new ones. ``Node`` is a closed union, so consumers ``match`` on it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

Value = str | int | float


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open character offsets ``[start, end)`` into the query text."""

    start: int
    end: int


def _pos() -> Any:
    return field(default=None, compare=False, repr=False)


class Op(enum.Enum):
    """Comparison operators; the value is the DSL token."""

    MATCH = ":"
    EQ = "="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="

    @property
    def is_range(self) -> bool:
        return self in (Op.GT, Op.GE, Op.LT, Op.LE)


@dataclass(frozen=True, slots=True)
class Compare:
    """``Attr <op> value``: ``FileName='a.jpg'``, ``DataSize>=10``, ``FileDir:'blue_car'``."""

    attr: str
    op: Op
    value: Value
    span: Span | None = _pos()
    attr_span: Span | None = _pos()
    value_span: Span | None = _pos()


@dataclass(frozen=True, slots=True)
class Has:
    """``HAS Attr``: the attribute is present (see SEMANTICS.md)."""

    attr: str
    span: Span | None = _pos()
    attr_span: Span | None = _pos()


@dataclass(frozen=True, slots=True)
class Not:
    item: Node
    span: Span | None = _pos()


@dataclass(frozen=True, slots=True)
class And:
    """Two or more items, never a directly nested ``And`` (use :func:`and_`)."""

    items: tuple[Node, ...]
    span: Span | None = _pos()

    def __post_init__(self) -> None:
        _check_items(self, And)


@dataclass(frozen=True, slots=True)
class Or:
    """Two or more items, never a directly nested ``Or`` (use :func:`or_`)."""

    items: tuple[Node, ...]
    span: Span | None = _pos()

    def __post_init__(self) -> None:
        _check_items(self, Or)


@dataclass(frozen=True, slots=True)
class Const:
    """Matches every row (``True``) or none; the filter of a query with no conditions."""

    value: bool
    span: Span | None = _pos()


Node = And | Or | Not | Has | Compare | Const
NODE_TYPES = (And, Or, Not, Has, Compare, Const)


def _check_items(node: And | Or, kind: type) -> None:
    if not isinstance(node.items, tuple):
        object.__setattr__(node, "items", tuple(node.items))
    if len(node.items) < 2:
        raise ValueError(f"{kind.__name__} needs two or more items")
    for item in node.items:
        if isinstance(item, kind):
            raise ValueError(f"{kind.__name__} directly inside {kind.__name__}: flatten it")
        if not isinstance(item, NODE_TYPES):
            raise TypeError(f"not a query node: {item!r}")


def _flat(kind: type, items: tuple[Node, ...]) -> tuple[Node, ...]:
    out: list[Node] = []
    for item in items:
        if isinstance(item, (And, Or)) and isinstance(item, kind):
            out.extend(item.items)
        else:
            out.append(item)
    return tuple(out)


def and_(*items: Node, span: Span | None = None) -> Node:
    """Conjunction that flattens nested Ands; no items gives ``Const(True)``, one gives itself."""
    flat = _flat(And, items)
    if not flat:
        return Const(True, span=span)
    return flat[0] if len(flat) == 1 else And(flat, span=span)


def or_(*items: Node, span: Span | None = None) -> Node:
    """Disjunction that flattens nested Ors; no items gives ``Const(False)``, one gives itself."""
    flat = _flat(Or, items)
    if not flat:
        return Const(False, span=span)
    return flat[0] if len(flat) == 1 else Or(flat, span=span)


def walk(node: Node) -> Iterator[tuple[Node, int]]:
    """Every node with its depth (root = 1), iteratively: safe on very deep trees."""
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        yield current, depth
        if isinstance(current, (And, Or)):
            stack.extend((item, depth + 1) for item in reversed(current.items))
        elif isinstance(current, Not):
            stack.append((current.item, depth + 1))


def depth(node: Node) -> int:
    """Nesting depth of a tree (a single comparison has depth 1)."""
    return max(d for _, d in walk(node))


@dataclass(frozen=True, slots=True)
class Semantic:
    """The vector part of a query: ``Content:'...'`` (text), a query image URI, a query audio
    URI (ONE-PEACE), or several of them fused."""

    text: str | None = None
    image: str | None = None
    audio: str | None = None


def _freeze(options: Mapping[str, Value]) -> Mapping[str, Value]:
    return MappingProxyType(dict(options))


@dataclass(frozen=True, slots=True)
class Query:
    """The envelope: a filter, an optional semantic (vector) part and search options.

    ``options`` maps option names from ``schema.OPTIONS`` (``TopK``, ``SortBy``, ``Status``,
    ...) to their canonical values; absent options take their documented defaults.
    """

    filter: Node = field(default_factory=lambda: Const(True))
    semantic: Semantic | None = None
    options: Mapping[str, Value] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _freeze(self.options))
        if not isinstance(self.filter, NODE_TYPES):
            raise TypeError(f"not a query node: {self.filter!r}")

    def option(self, name: str, default: Value | None = None) -> Value | None:
        """An option's value, or ``default`` when the query does not set it."""
        return self.options.get(name, default)
