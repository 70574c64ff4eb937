"""Who may talk to the standalone server, and how much they may send.

Inside Airflow the api-server's login guards the app. Standalone, the server makes a token at
start (or takes one) and prints the gallery's URL with it, as notebook servers do: a request
carries it as ``Authorization: Bearer``, as the cookie the first page load sets, or once as
``?token=``. Request bodies (uploads included) are capped everywhere.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "mmdm_token"
MAX_BODY_BYTES = 32 * 1024 * 1024  # an uploaded query image or a batch of tag edits


class TokenAuthMiddleware:
    """401 unless the request carries ``token``; a valid ``?token=`` sets the cookie."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        cookies = SimpleCookie(headers.get("cookie", ""))
        offered = [headers.get("authorization", "").removeprefix("Bearer ").strip(),
                   cookies[COOKIE].value if COOKIE in cookies else "", query]
        if not any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered):
            await _send_json(send, 401, {"Code": "Unauthorized", "Message": (
                "this server needs its token: open the URL it printed at start (…?token=…) "
                "or send Authorization: Bearer <token>")})
            return
        if not query:
            await self.app(scope, receive, send)
            return

        async def set_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", value.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, set_cookie)


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
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
