"""What a model client spent, as its service reports it: calls, images sent, tokens.

Each service client counts into its own ``usage``; a job reads the difference over its run and
records it in its result (``Usage``), so a team sees what a tagging or index job cost. Tokens
are the service's own figures (DashScope's ``input_tokens``/``output_tokens``/``image_tokens``,
OpenAI-style ``prompt_tokens``/``completion_tokens``); a service that reports none adds none.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Usage:
    """Counters a client's worker threads add to at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, **counts: Any) -> None:
        with self._lock:
            for name, value in counts.items():
                if isinstance(value, (int, float)) and value:
                    self._counts[name] += int(value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def usage_of(client: object) -> dict[str, int]:
    usage = getattr(client, "usage", None)
    return usage.snapshot() if isinstance(usage, Usage) else {}


def usage_since(client: object, before: dict[str, int]) -> dict[str, int]:
    """What ``client`` spent since ``before`` (its ``usage_of`` then)."""
    now = usage_of(client)
    return {name: n - before.get(name, 0) for name, n in sorted(now.items())
            if n - before.get(name, 0)}


def field(source: Any, name: str) -> Any:
    """``name`` of a usage record that is a dict (DashScope) or an object (openai)."""
    if isinstance(source, dict):
        return source.get(name)
    return getattr(source, name, None)
