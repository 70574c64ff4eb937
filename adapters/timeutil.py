"""Times are stored as UTC epoch milliseconds and shown as PAI's ISO-8601 strings."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from mmdm.query.schema import format_date


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_iso(ms: int | None) -> str | None:
    """``1736692561000`` -> ``'2025-01-12T14:36:01.000Z'`` (PAI's format)."""
    return None if ms is None else format_date(ms)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def from_iso(text: str) -> int:
    """Parse an ISO-8601 instant; a value without an offset is read as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(milliseconds=1)  # exact: timestamp() * 1000 rounds
