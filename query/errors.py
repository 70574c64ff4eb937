"""The QueryError family: errors are data (a stable code, a span, the source), not prose.

``code`` is a stable kebab-case key that tests, the UI and API responses rely on; the message
may be reworded freely. ``render()`` draws a caret under the offending span.
"""

from __future__ import annotations

from typing import Any

from .ast import Span


class QueryError(Exception):
    """Base class of every error the query engine raises on bad input.

    Attributes:
        code: stable kebab-case key, e.g. ``unexpected-token``.
        message: human-readable explanation.
        span: offsets into ``source`` (``None`` when the error has no position).
        source: the query text, when there is one.
        expected: what would have been accepted at this point (may be empty).
    """

    kind = "query"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        span: Span | None = None,
        source: str | None = None,
        expected: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span
        self.source = source
        self.expected = expected

    def __str__(self) -> str:
        return self.render()

    def with_source(self, source: str) -> QueryError:
        """Attach the query text (kept if already set); returns ``self``."""
        if self.source is None:
            self.source = source
        return self

    def position(self) -> tuple[int, int] | None:
        """1-based ``(line, column)`` of the span start, or ``None``."""
        if self.span is None or self.source is None:
            return None
        start = min(self.span.start, len(self.source))
        line_start = self.source.rfind("\n", 0, start) + 1
        return self.source.count("\n", 0, start) + 1, start - line_start + 1

    def render(self) -> str:
        """``line:col: message [code]`` plus the source line and a caret under the span."""
        pos = self.position()
        if pos is None or self.span is None or self.source is None:
            return f"{self.message} [{self.code}]"
        src, (line, col) = self.source, pos
        start = min(self.span.start, len(src))
        line_start = start - (col - 1)
        line_end = src.find("\n", start)
        line_end = len(src) if line_end == -1 else line_end
        marks = "^" * max(1, min(self.span.end, line_end) - start)
        head = f"{line}:{col}: {self.message} [{self.code}]"
        return f"{head}\n{src[line_start:line_end]}\n{' ' * (col - 1)}{marks}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for HTTP 400 bodies and logs."""
        out: dict[str, Any] = {"kind": self.kind, "code": self.code, "message": self.message}
        out["span"] = None if self.span is None else [self.span.start, self.span.end]
        if self.expected:
            out["expected"] = list(self.expected)
        return out


class DslSyntaxError(QueryError, ValueError):
    """The text is not a DSL sentence: bad character, unexpected token, too deep."""

    kind = "syntax"


class DslSemanticError(QueryError, ValueError):
    """Well-formed but meaningless: unknown attribute, operator not allowed, TopK under OR."""

    kind = "semantic"


class QueryJsonError(QueryError, ValueError):
    """AST JSON that is not a query of a known ``ast_version`` (code ``bad-ast-json``)."""

    kind = "json"


class UnsupportedFeatureError(QueryError):
    """A valid query that one backend (``backend``) cannot express."""

    kind = "unsupported"

    def __init__(self, code: str, message: str, *, backend: str, **kw: Any) -> None:
        super().__init__(code, message, **kw)
        self.backend = backend

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "backend": self.backend}
