"""Compile a bound filter to an Elasticsearch ``bool`` filter over PAI's index table.

Filter context only (no scoring): ``term`` / ``terms`` / ``range`` / ``exists``, ``bool`` with
``filter`` / ``should`` / ``must_not``. Values are JSON values in the dict, never text. ``must_not``
already matches documents that lack a field, which is the oracle's two-valued ``NOT``. A whole
filter that folds to false is ``match_none``: an empty ``bool`` would match everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..ast import And, Compare, Const, Has, Node, Not, Op, Or, Query
from . import vector

BACKEND = "elasticsearch"
SUPPORTED: Mapping[str, frozenset[Op]] = vector.SUPPORTED
RANGE: dict[Op, str] = {Op.GT: "gt", Op.GE: "gte", Op.LT: "lt", Op.LE: "lte"}
Clause = dict[str, Any]


@dataclass(frozen=True)
class CompiledEs:
    """``{"bool": {"filter": [...]}}``: a query clause for the store's ``knn.filter``."""

    body: Clause


@dataclass(frozen=True)
class _Fields:
    """Index-table field -> where the index keeps it exactly (``file_meta_id.keyword`` on a
    user-created index with ES's default dynamic mapping)."""

    paths: Mapping[str, str]

    def __call__(self, attr: str) -> str:
        name = vector.INDEX_FIELDS[attr]
        return self.paths.get(name, name)


def _compare(node: Compare, path: str) -> Clause:
    if node.op is Op.EQ:
        return {"term": {path: node.value}}
    return {"range": {path: {RANGE[node.op]: node.value}}}


def _or(items: tuple[Node, ...], fields: _Fields) -> Clause:
    same = vector.same_field_values(items)
    if same is not None:  # one terms lookup instead of a should per value
        attr, values = same
        return {"terms": {fields(attr): list(dict.fromkeys(values))}}
    return {"bool": {"should": [_clause(i, fields) for i in items], "minimum_should_match": 1}}


def _clause(node: Node, fields: _Fields) -> Clause:
    match node:
        case And(items=items):
            return {"bool": {"filter": [_clause(i, fields) for i in items]}}
        case Or(items=items):
            return _or(items, fields)
        case Not(item=item):
            return {"bool": {"must_not": [_clause(item, fields)]}}
        case Has(attr=attr):
            return {"exists": {"field": fields(attr)}}
        case Compare():
            return _compare(node, fields(node.attr))
        case Const(value=value):
            return {"match_all": {}} if value else {"match_none": {}}
    raise vector.unsupported(node, BACKEND)


def compile_es(query: Query | Node, fields: Mapping[str, str] | None = None) -> CompiledEs:
    """The ``bool`` filter of a bound query's filter (ANDed by the store with its scope).

    Args:
        fields: the store's ``filter_fields`` (index-table field -> ES path); identity if None.

    Raises:
        UnsupportedFeatureError: anything outside ``SUPPORTED``, or a Status other than ACTIVE.
    """
    clause = _clause(vector.prepare(query, BACKEND), _Fields(fields or {}))
    if "bool" in clause and set(clause["bool"]) == {"filter"}:
        return CompiledEs(clause)
    return CompiledEs({"bool": {"filter": [clause]}})
