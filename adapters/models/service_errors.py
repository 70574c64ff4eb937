"""Turning a model service's HTTP failures into ``AdapterError``s that say whether to retry."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import requests

from ..errors import AdapterError

# Statuses after which the same request may succeed: timeout, throttling, server trouble.
RETRIABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses that blame one request's content (bad parameter, moderation, too large), not the
# account or the key: a batch failing with one of these is retried item by item.
CONTENT_STATUSES = frozenset({400, 413})
# Service messages are echoed into errors; an HTML error page must not flood the job log.
MAX_DETAIL_CHARS = 300


class ModelServiceError(AdapterError):
    """A model service refused a request. ``status`` is the HTTP status, ``code`` its code."""

    def __init__(self, message: str, *, status: int, code: str = "",
                 retry_after: float | None = None):
        retriable = status in RETRIABLE_STATUSES or status >= 500
        super().__init__(message, retriable=retriable, is_input_error=not retriable,
                         retry_after=retry_after if retriable else None)
        self.status = status
        self.code = code


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``, if sent."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def shorten(text: object) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "..."


def transport_error(service: str, exc: requests.RequestException) -> AdapterError:
    """Refused connections, resets and timeouts: the request may succeed later."""
    kind = "timed out" if isinstance(exc, requests.Timeout) else "could not be reached"
    return AdapterError(f"{service} {kind}: {type(exc).__name__}: {shorten(exc)}", retriable=True)


T = TypeVar("T")


def request_isolating_refusals(batch: Sequence[tuple[int, T]],
                               request: Callable[[list[T]], Sequence[Any]],
                               results: list[Any]) -> None:
    """Send one batch, its entries into ``results`` by index. When the service refuses the
    batch over its content (400/413), retry it one item at a time: the refused item gets the
    error, the others their vectors. Other failures propagate (the whole request failed)."""
    try:
        entries = request([item for _, item in batch])
    except ModelServiceError as exc:
        if exc.status not in CONTENT_STATUSES:
            raise
        if len(batch) == 1:
            results[batch[0][0]] = exc
            return
        for one in batch:
            request_isolating_refusals([one], request, results)
        return
    for (i, _), entry in zip(batch, entries):
        results[i] = entry
