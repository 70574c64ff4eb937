"""mmdm's query engine: PAI's QueryExpression DSL parsed to an AST, checked, evaluated, compiled.

    >>> from mmdm.query import parse, to_dsl, compile_sql
    >>> q = parse("FileDir:'blue_car' AND NOT Tags.user='rainy days' AND TopK=100")
    >>> q.options["TopK"]
    100
    >>> to_dsl(q)
    "FileDir:'blue_car' AND NOT Tags.user='rainy days' AND TopK=100"

Semantics are defined in ``query/SEMANTICS.md``; ``evaluate`` is the reference implementation.
"""

from __future__ import annotations

from .analyze import analyze, check_query
from .ast import (And, Compare, Const, Has, Node, Not, Op, Or, Query, Semantic, Span, and_,
                  or_)
from .codec import AST_VERSION, from_json, to_json
from .compile.es import CompiledEs, compile_es
from .compile.milvus import CompiledMilvus, compile_milvus
from .compile.sql import CompiledSql, compile_sql, compile_where
from .errors import (DslSemanticError, DslSyntaxError, QueryError, QueryJsonError,
                     UnsupportedFeatureError)
from .evaluate import evaluate, select_rows
from .params import parse_params
from .parser import parse
from .printer import to_dsl

__all__ = [
    "AST_VERSION", "And", "Compare", "CompiledEs", "CompiledMilvus", "CompiledSql", "Const",
    "DslSemanticError", "DslSyntaxError", "Has", "Node", "Not", "Op", "Or", "Query",
    "QueryError", "QueryJsonError", "Semantic", "Span", "UnsupportedFeatureError", "analyze",
    "and_", "check_query", "compile_es", "compile_milvus", "compile_sql", "compile_where",
    "evaluate", "from_json", "or_", "parse", "parse_params", "select_rows", "to_dsl", "to_json",
]
