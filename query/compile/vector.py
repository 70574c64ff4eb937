"""What a vector store's index table can filter, shared by the Milvus and Elasticsearch compilers.

A vector store holds only PAI's index-table fields (``index_set_id``, ``file_meta_id``,
``dataset_id``, ``dataset_version``, ``uri``; pai-compat §6). Of the DSL's attributes only
``DatasetFileMetaId`` lives there, so that is all a vector store can filter on; everything else
stays in SQL (the search planner post-filters). The rows below are the whole capability: a
backend that gains a field gains a row, not a branch.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..ast import And, Compare, Const, Has, Node, Not, Op, Or, Query, and_, or_, walk
from ..errors import UnsupportedFeatureError
from ..printer import to_dsl

# DSL attribute -> index-table field.
INDEX_FIELDS: Mapping[str, str] = {"DatasetFileMetaId": "file_meta_id"}
# Operators each attribute allows on a vector store.
SUPPORTED: Mapping[str, frozenset[Op]] = {"DatasetFileMetaId": frozenset({Op.EQ})}
# HAS on these is always true: the index table's fields are non-nullable.
ALWAYS_PRESENT = frozenset({"DatasetFileMetaId"})
# Index jobs drop the vectors of deleted files, so an index set answers for ACTIVE files only.
SUPPORTED_STATUS = ("ACTIVE",)


def unsupported(node: Node, backend: str) -> UnsupportedFeatureError:
    leaf = first_unsupported(node) or node
    return UnsupportedFeatureError(
        "unsupported-construct",
        f"{to_dsl(leaf)} cannot be compiled for {backend}: a vector index table holds only "
        f"{', '.join(INDEX_FIELDS)} of the DSL's attributes", backend=backend)


def first_unsupported(node: Node) -> Node | None:
    """The first leaf of ``node`` outside ``SUPPORTED`` (logic and constants are supported)."""
    for current, _ in walk(node):
        match current:
            case Has(attr=attr) if attr not in ALWAYS_PRESENT:
                return current
            case Compare(attr=attr, op=op) if op not in SUPPORTED.get(attr, frozenset()):
                return current
    return None


def supports(node: Node) -> bool:
    return first_unsupported(node) is None


def fold(node: Node) -> Node:
    """Constant folding: ``HAS`` on an always-present field is true, and constants absorb.

    Afterwards a ``Const`` appears only as the whole tree, so a backend never sees an OR that
    folds to nothing (ES would read an empty ``bool`` as "match everything").
    """
    match node:
        case Has(attr=attr) if attr in ALWAYS_PRESENT:
            return Const(True)
        case Not(item=item):
            inner = fold(item)
            return Const(not inner.value) if isinstance(inner, Const) else Not(inner)
        case And(items=items):
            kept = [fold(i) for i in items]
            if Const(False) in kept:
                return Const(False)
            return and_(*(i for i in kept if i != Const(True)))
        case Or(items=items):
            kept = [fold(i) for i in items]
            if Const(True) in kept:
                return Const(True)
            return or_(*(i for i in kept if i != Const(False)))
    return node


def prepare(query: Query | Node, backend: str) -> Node:
    """The folded filter of a bound query a vector store can express, or the reason it cannot.

    Raises:
        UnsupportedFeatureError: a Status scope other than ACTIVE, or an attribute or operator
            outside ``SUPPORTED``.
    """
    if isinstance(query, Query):
        status = str(query.option("Status", "ACTIVE"))
        if status not in SUPPORTED_STATUS:
            raise UnsupportedFeatureError(
                "unsupported-construct", f"Status='{status}' cannot be compiled for {backend}: "
                "an index set holds the vectors of ACTIVE files only", backend=backend)
        query = query.filter
    if not supports(query):
        raise unsupported(query, backend)
    return fold(query)


def pushable(node: Node) -> Node:
    """The part of a filter a vector store can apply: its supported top-level AND items.

    The result is implied by ``node`` (it keeps only conjuncts), so searching with it and
    post-filtering with ``node`` loses nothing. ``Const(True)`` when nothing can be pushed.
    """
    items = node.items if isinstance(node, And) else (node,)
    return and_(*(i for i in items if supports(i)))


def same_field_values(items: tuple[Node, ...], op: Op = Op.EQ) -> tuple[str, list[str]] | None:
    """``(attribute, values)`` when every item is ``attribute = value`` on one attribute: an OR
    of these becomes one ``in [...]`` / ``terms``."""
    if not all(isinstance(i, Compare) and i.op is op for i in items):
        return None
    attrs = {i.attr for i in items if isinstance(i, Compare)}
    if len(attrs) != 1:
        return None
    return attrs.pop(), [str(i.value) for i in items if isinstance(i, Compare)]
