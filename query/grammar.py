# ruff: noqa: F821, F811
# mypy: ignore-errors
"""sly lexer and parser for the QueryExpression DSL: the only module that imports sly.

No sly object leaves this module: rule actions only build ``ast`` nodes, and errors are raised
as ``DslSyntaxError``. Create a fresh ``DslLexer()``/``DslParser()`` per parse (instances keep
parse stacks and a position cache). Grammar (precedence NOT > AND > OR)::

    expr  : expr OR expr | expr AND expr | NOT expr | "(" expr ")"
          | HAS NAME | attr (":" | "=" | ">" | ">=" | "<" | "<=") value
    attr  : NAME        value : STRING | NUMBER
"""

from __future__ import annotations

import re
from decimal import Decimal

from sly import Lexer, Parser

from . import ast
from .errors import DslSyntaxError

KEYWORDS = ("AND", "OR", "NOT", "HAS")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "/": "/"}
_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|[\s\S])")

# Human names of tokens, for "expected ..." in error messages.
TOKEN_WORDS = {
    "NAME": "an attribute name", "STRING": "a quoted string", "NUMBER": "a number",
    "AND": "AND", "OR": "OR", "NOT": "NOT", "HAS": "HAS", "LPAREN": "'('", "RPAREN": "')'",
    "COLON": "':'", "EQ": "'='", "GT": "'>'", "GE": "'>='", "LT": "'<'", "LE": "'<='",
    "$end": "end of query",
}


def _unescape(body: str, start: int) -> str:
    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] == "u" and len(esc) == 5:
            return chr(int(esc[1:], 16))
        if esc in _ESCAPES:
            return _ESCAPES[esc]
        span = ast.Span(start + m.start(), start + m.end())
        raise DslSyntaxError("bad-escape", f"unknown escape '\\{esc}' in a string", span=span,
                             expected=tuple(f"\\{k}" for k in _ESCAPES) + ("\\uXXXX",))

    return _ESCAPE_RE.sub(repl, body)


MAX_NUMBER_LENGTH = 40
_EXACT_FLOAT_LIMIT = 2**53  # above it a float holds only integers, and not all of them


def _number(text: str, span: ast.Span) -> int | float:
    """The literal's value, exact where the engines compare exactly: an integer as ``int``;
    a literal with a fraction or exponent as ``float``, except one in the 64-bit range too
    large for a float to hold exactly, which becomes the ``int`` it spells (refused if it has
    a fraction a float would round away: the engines would compare a different number)."""
    if len(text) > MAX_NUMBER_LENGTH:
        raise DslSyntaxError("bad-number", f"a number may have at most {MAX_NUMBER_LENGTH} "
                             "characters", span=span)
    if not any(c in text for c in ".eE"):
        return int(text)
    value = float(text)
    # Beyond the 64-bit range no stored integer is near enough for rounding to matter.
    if _EXACT_FLOAT_LIMIT <= abs(value) < 2**63:
        exact = Decimal(text)
        if exact != exact.to_integral_value():
            raise DslSyntaxError("bad-number", f"{text} has more digits than a 64-bit float "
                                 "holds: it would be compared as another number", span=span)
        return int(exact)
    return value


class DslLexer(Lexer):
    tokens = {NAME, STRING, NUMBER, AND, OR, NOT, HAS, LPAREN, RPAREN, COLON, EQ, GE, GT, LE, LT}
    ignore = " \t\r\n\f\v\u00a0\u3000"

    STRING = r"'(?:[^'\\]|\\[\s\S])*'|\"(?:[^\"\\]|\\[\s\S])*\""
    NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
    NAME = r"[^\W\d]\w*(?:\.[\w-]+)*"
    LPAREN = r"\("
    RPAREN = r"\)"
    COLON = r":"
    EQ = r"="
    GE = r">="
    GT = r">"
    LE = r"<="
    LT = r"<"

    def STRING(self, t):
        t.value = _unescape(t.value[1:-1], t.index + 1)
        return t

    def NUMBER(self, t):
        t.value = _number(t.value, ast.Span(t.index, t.index + len(t.value)))
        return t

    def NAME(self, t):
        if t.value.upper() in KEYWORDS:  # keywords in any case
            t.type = t.value.upper()
        return t

    def error(self, t):
        char = t.value[0]
        if char in "'\"":
            span = ast.Span(self.index, self.index + len(t.value))
            raise DslSyntaxError("unterminated-string", f"string opened with {char} is not closed",
                                 span=span, expected=(char,))
        span = ast.Span(self.index, self.index + 1)
        raise DslSyntaxError("bad-character", f"unexpected character {char!r}", span=span)


def _span(p) -> ast.Span:
    return ast.Span(p.index, p.end)


class DslParser(Parser):
    tokens = DslLexer.tokens
    precedence = (("left", OR), ("left", AND), ("right", NOT))

    @_("expr OR expr")
    def expr(self, p):
        return ast.Or(ast._flat(ast.Or, (p.expr0, p.expr1)), span=_span(p))

    @_("expr AND expr")
    def expr(self, p):
        return ast.And(ast._flat(ast.And, (p.expr0, p.expr1)), span=_span(p))

    @_("NOT expr")
    def expr(self, p):
        return ast.Not(p.expr, span=_span(p))

    @_("LPAREN expr RPAREN")
    def expr(self, p):
        return p.expr

    @_("HAS NAME")  # not "HAS attr": a shared attr state would merge follow sets (LALR)
    def expr(self, p):
        name_span = ast.Span(p.end - len(p.NAME), p.end)
        return ast.Has(p.NAME, span=_span(p), attr_span=name_span)

    @_("attr COLON value", "attr EQ value", "attr GT value", "attr GE value", "attr LT value",
       "attr LE value")
    def expr(self, p):
        (name, name_span), (value, value_span) = p.attr, p.value
        return ast.Compare(name, ast.Op(p[1]), value, span=_span(p), attr_span=name_span,
                           value_span=value_span)

    @_("NAME")
    def attr(self, p):
        return p.NAME, _span(p)

    @_("STRING", "NUMBER")
    def value(self, p):
        return p[0], _span(p)

    def error(self, tok):
        actions = self._lrtable.lr_action.get(self.state, {})
        expected = tuple(word for k, word in TOKEN_WORDS.items() if k in actions)
        wanted = f"; expected {', '.join(expected)}" if expected else ""
        if tok is None:  # parser.py sets the span to the end of the text
            raise DslSyntaxError("unexpected-eof", f"query ends too early{wanted}",
                                 expected=expected)
        found = TOKEN_WORDS[tok.type] if tok.type in ("AND", "OR", "NOT", "HAS") else repr(
            tok.value)
        raise DslSyntaxError("unexpected-token", f"unexpected {found}{wanted}",
                             span=ast.Span(tok.index, tok.end), expected=expected)


def parse_tree(text: str) -> ast.Node | None:
    """Raw parse (no semantic checks); ``None`` for an empty text."""
    tokens = DslLexer().tokenize(text)
    return DslParser().parse(tokens)
