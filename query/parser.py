"""``parse(text) -> Query``: run the grammar, guard the depth, bind to the schema.

Errors raised here carry the source text, so ``err.render()`` can draw a caret.
"""

from __future__ import annotations

from . import grammar
from .analyze import analyze, check_depth
from .ast import Const, Node, Query, Span
from .errors import DslSyntaxError, QueryError

MAX_LENGTH = 100_000
_BLANK = set(grammar.DslLexer.ignore)


def parse_tree(text: str) -> Node:
    """The raw tree of ``text`` (no schema checks); ``Const(True)`` for a blank text."""
    if not isinstance(text, str):
        raise TypeError(f"query text must be a str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise DslSyntaxError("too-long", f"the query is longer than {MAX_LENGTH} characters",
                             span=Span(MAX_LENGTH, len(text)), source=text)
    if all(c in _BLANK for c in text):
        return Const(True)
    try:
        tree = grammar.parse_tree(text)
        assert tree is not None  # error() always raises
        check_depth(tree)
    except DslSyntaxError as err:
        if err.code == "unexpected-eof":
            err.span = Span(len(text), len(text))
        raise err.with_source(text) from None
    return tree


def parse(text: str) -> Query:
    """Parse a QueryExpression into the ``Query`` envelope.

    A blank text is a query without conditions (matches every ACTIVE file).

    Raises:
        DslSyntaxError: the text is not a DSL sentence (bad character, unexpected token,
            unterminated string, nesting deeper than ``MAX_DEPTH``).
        DslSemanticError: unknown attribute, operator not allowed, option not at top level...
    """
    tree = parse_tree(text)
    try:
        return analyze(tree)
    except QueryError as err:
        raise err.with_source(text) from None
