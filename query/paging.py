"""NextToken: an opaque, checked cursor for paging through a query's results.

A token is base64url JSON holding the cursor (a keyset for SQL pages, an offset into the ranked
list for vector pages), a fingerprint of the query it belongs to and an HMAC over both with the
service's secret key. The cursor is readable, but only the service can issue one: an edited,
forged, truncated or mistyped token is a clear error instead of a different page (or a cursor
the service never produced), and the fingerprint does the same for a token replayed with
another query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from .ast import Query
from .codec import to_json
from .errors import DslSemanticError

TOKEN_VERSION = 1
# Options that may change between pages without changing what the pages hold.
_PAGE_OPTIONS = ("NextToken", "MaxResults", "ThumbnailMode", "SignMode")


def query_key(query: Query, *scope: str) -> str:
    """The SHA-256 of what a query selects and ranks, plus its scope (dataset, version, index
    set, an uploaded image's digest ...), ignoring the per-page options: equal keys, equal
    results."""
    options = {k: v for k, v in query.options.items() if k not in _PAGE_OPTIONS}
    body = to_json(Query(query.filter, query.semantic, options))
    text = json.dumps([body, list(scope)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint_of(key: str) -> str:
    """The short digest a NextToken carries, of a ``query_key``."""
    return key[:16]


def fingerprint(query: Query, *scope: str) -> str:
    """``fingerprint_of(query_key(query, *scope))``."""
    return fingerprint_of(query_key(query, *scope))


def _signature(payload: dict[str, Any], key: bytes) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def encode_token(mode: str, cursor: Any, query_fingerprint: str, key: bytes) -> str:
    """The NextToken for ``cursor`` (JSON-ready) of a ``mode`` ("tag" / "vector") listing,
    signed with ``key`` (the service's secret)."""
    payload = {"v": TOKEN_VERSION, "m": mode, "q": query_fingerprint, "c": cursor}
    payload["s"] = _signature(payload, key)
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad(message: str) -> DslSemanticError:
    return DslSemanticError("bad-next-token", f"NextToken is not valid: {message}; start again "
                            "without NextToken")


def _payload(token: str, key: bytes) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise _bad("it is not a token this service issued") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), str):
        raise _bad("it is not a token this service issued")
    check = payload.pop("s").encode()  # bytes: compare_digest refuses non-ASCII text
    if not hmac.compare_digest(check, _signature(payload, key).encode()) or (
            payload.get("v") != TOKEN_VERSION):
        raise _bad("it was changed or cut short")
    return payload


def decode_token(token: str, mode: str, query_fingerprint: str, key: bytes) -> Any:
    """The cursor inside ``token``, checked against ``key`` and the listing and query it must
    belong to.

    Raises:
        DslSemanticError: (``bad-next-token``) a token that was edited, forged, truncated, is
            not a token at all, or belongs to another query or kind of listing.
    """
    payload = _payload(token, key)
    if payload.get("m") != mode or payload.get("q") != query_fingerprint:
        raise _bad("it belongs to a different query")
    return payload.get("c")
