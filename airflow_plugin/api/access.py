"""Who may talk to the standalone server, and how much they may send.

Inside Airflow the api-server's login guards the app. Standalone, the server makes a token at
start (or takes one) and prints the gallery's URL with it, as notebook servers do: a request
carries it as ``Authorization: Bearer``, as the cookie the first page load sets, or once as
``?token=``. Request bodies (uploads included) are capped everywhere.

Alibaba Cloud's PAI SDK authenticates too, with the credentials this server issues: the token as
its bearer credential (``x-acs-bearer-token``), or AccessKeyId ``access_key_id`` (default
``mmdm``) with the token as AccessKeySecret, which the SDK turns into an ``ACS3-HMAC-SHA256``
signature of the method, path, query, headers and body hash. Such a request must also be fresh
(``x-acs-date`` within 15 minutes) and unique (its ``x-acs-signature-nonce`` not seen before).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, parse_qsl, quote

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .responses import new_request_id

COOKIE = "mmdm_token"
MAX_BODY_BYTES = 32 * 1024 * 1024  # an uploaded query image or a batch of tag edits
ACCESS_KEY_ID = "mmdm"
SIGNATURE_ALGORITHM = "ACS3-HMAC-SHA256"  # the SDK's default; SM3 and RSA are not offered
# Headers a signature must cover: the Host binds it to this server, the date and nonce stop
# replays, the content hash binds the body.
REQUIRED_SIGNED = ("host", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce")
MAX_CLOCK_SKEW_S = 15 * 60
MAX_NONCES = 200_000  # signed requests remembered at once (~30 MB); only valid ones count
MAX_NONCE_LENGTH = 128  # the SDK's are 32 hex digits


class SignatureError(Exception):
    """Why a signed request was refused; the message goes back to the client."""


class TokenAuthMiddleware:
    """401 unless the request carries ``token`` or is signed with it; a valid ``?token=`` sets
    the cookie."""

    def __init__(self, app: ASGIApp, token: str, access_key_id: str = ACCESS_KEY_ID,
                 limit: int = MAX_BODY_BYTES):
        self.app, self.token, self.access_key_id, self.limit = app, token, access_key_id, limit
        # nonce -> when it may be forgotten. Entries go in with expiry now + 2 windows, so the
        # dict's insertion order is also expiry order and pruning pops from the front.
        self.nonces: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        cookies = SimpleCookie(headers.get("cookie", ""))
        authorization = headers.get("authorization", "")
        bearer = headers.get("x-acs-bearer-token", "")  # the SDK's bearer credential
        offered = [authorization.removeprefix("Bearer ").strip(),
                   cookies[COOKIE].value if COOKIE in cookies else "", query, bearer]
        if any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered):
            await self.app(scope, receive, self._cookie_setter(send) if query else send)
            return
        if authorization.upper().startswith("ACS"):  # an Alibaba Cloud signature, any version
            try:
                receive = await self._verify_signature(scope, receive, authorization)
            except SignatureError as e:
                await _send_json(send, 401, {"Code": "InvalidSignature", "Message": str(e)})
                return
            except _TooLarge:
                await _send_json(send, 413, _too_large(self.limit))
                return
            await self.app(scope, receive, send)
            return
        message = ("this server needs its token: open the URL it printed at start (…?token=…) "
                   "or send Authorization: Bearer <token>, or use the PAI SDK with the credentials "
                   "it printed")
        if bearer:
            message = "x-acs-bearer-token is not this server's token"
        await _send_json(send, 401, {"Code": "Unauthorized", "Message": message})

    def _cookie_setter(self, send: Send) -> Send:
        async def set_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", value.encode("latin-1"))]
            await send(message)

        return set_cookie

    async def _verify_signature(self, scope: Scope, receive: Receive,
                                authorization: str) -> Receive:
        """Check an ACS3 signature as the SDK makes it (``alibabacloud_tea_openapi``'s
        ``Utils.get_authorization``); return a ``receive`` that replays the body read."""
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != SIGNATURE_ALGORITHM:
            raise SignatureError(f"only {SIGNATURE_ALGORITHM} signatures are accepted, "
                                 f"not {algorithm[:40]!r}")
        # "Credential=<id>,SignedHeaders=<h1;h2>,Signature=<hex>" -> {name: value}
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        key_id, signature = fields.get("Credential", ""), fields.get("Signature", "")
        signed = sorted({h.strip().lower() for h in fields.get("SignedHeaders", "").split(";")}
                        - {""})
        if not hmac.compare_digest(key_id.encode(), self.access_key_id.encode()):
            raise SignatureError("the AccessKeyId is not this server's")
        values: dict[str, list[str]] = {}
        for k, v in scope["headers"]:
            values.setdefault(k.decode("latin-1").lower(), []).append(
                v.decode("latin-1").strip())
        required = [*REQUIRED_SIGNED, *(["content-type"] if "content-type" in values else [])]
        if missing := [h for h in required if h not in signed]:
            raise SignatureError(f"SignedHeaders must include {', '.join(missing)}")
        if absent := [h for h in signed if h not in values]:
            raise SignatureError(f"signed headers missing from the request: {', '.join(absent)}")

        # The canonical request, built as the SDK builds it. The path is the one sent (already
        # percent-encoded by the SDK); the query is decoded and re-quoted as the SDK quotes it.
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                          keep_blank_values=True)
        if len({k for k, _ in pairs}) != len(pairs):
            # The SDK never repeats one; a repeat added later could be what the route reads.
            raise SignatureError("a query parameter is repeated")
        canonical_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(pairs))
        canonical_headers = "".join(f"{h}:{','.join(sorted(values[h]))}\n" for h in signed)
        content_sha256 = values["x-acs-content-sha256"][0]
        canonical = "\n".join([scope["method"], path or "/", canonical_query, canonical_headers,
                               ";".join(signed), content_sha256])
        string_to_sign = (f"{SIGNATURE_ALGORITHM}\n"
                          f"{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}")
        expected = hmac.new(self.token.encode(), string_to_sign.encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
            raise SignatureError("the signature does not match this request (signature "
                                 "mismatch): check the AccessKeySecret, the server's token")

        # Signed, so the header values are the client's own; now check them against reality.
        date = _parse_date(values["x-acs-date"][0])
        now = time.time()
        if abs(now - date) > MAX_CLOCK_SKEW_S:
            raise SignatureError(f"x-acs-date is more than {MAX_CLOCK_SKEW_S // 60} minutes "
                                 "from the server's clock (stale or replayed request)")
        body = await self._read_body(receive)
        if not hmac.compare_digest(content_sha256.lower().encode(),
                                   hashlib.sha256(body).hexdigest().encode()):
            raise SignatureError("x-acs-content-sha256 does not match the body received "
                                 "(body hash mismatch)")
        self._use_nonce(values["x-acs-signature-nonce"][0], now)
        return _replay(body, receive)

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body, refusing (413) one over the limit before holding it all."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _use_nonce(self, nonce: str, now: float) -> None:
        """Remember ``nonce``, or refuse it if seen within the window. A replay carries the
        same signed date, accepted until date + window <= now + 2 windows, so a nonce kept that
        long cannot come back."""
        if not nonce or len(nonce) > MAX_NONCE_LENGTH:
            raise SignatureError("x-acs-signature-nonce is empty or too long")
        while self.nonces and next(iter(self.nonces.values())) < now:
            self.nonces.pop(next(iter(self.nonces)))
        if nonce in self.nonces:
            raise SignatureError("x-acs-signature-nonce was already used (replayed request)")
        if len(self.nonces) >= MAX_NONCES:
            # Forgetting one would let it be replayed; only valid signers get this far.
            raise SignatureError("too many signed requests in the last 30 minutes; retry later")
        self.nonces[nonce] = now + 2 * MAX_CLOCK_SKEW_S


class _TooLarge(Exception):
    pass


def _parse_date(value: str) -> float:
    """The SDK's ``x-acs-date`` (``2024-01-02T03:04:05Z``) as a POSIX time."""
    try:
        date = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError("x-acs-date is not an ISO 8601 time") from None
    if date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)
    return date.timestamp()


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the client's messages
    (a disconnect) after it."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, _too_large(self.limit))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # the route reading the body answers 413 (HTTPException)
                raise HTTPException(413, _too_large(self.limit)["Message"])
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> dict[str, str]:
    return {"Code": "RequestEntityTooLarge",
            "Message": f"the request body is larger than {limit // (1024 * 1024)} MiB"}


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    """A PAI-shaped error: ``Code``, ``Message`` and a fresh ``RequestId`` (which the SDK puts
    in its exception's message)."""
    data = json.dumps({**body, "RequestId": new_request_id()}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
