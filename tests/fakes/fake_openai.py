"""A fake OpenAI-compatible model server (as vLLM, SGLang or Ollama serve one), driven through
the real ``openai`` client.

Two routes under ``/v1``, both behind ``Authorization: Bearer <api_key>`` (401 otherwise):

- ``POST /v1/chat/completions``: images arrive as ``image_url`` parts with data URIs; the reply
  is ``choices[0].message.content``, by default the tags chosen from the image's bytes among the
  tags named in the prompt (``answer`` scripts it, as in the DashScope fake).
- ``POST /v1/embeddings``: texts as ``input`` strings; images in the three forms servers
  document: chat ``messages`` with one ``image_url`` part (vLLM), ``input`` objects
  ``{"image": uri}`` (Jina-style), or data-URI strings with ``modality: "image"``
  (Infinity-style). Vectors are ``fake_vector`` of the content; ``data`` comes back shuffled,
  so only ``index`` says which is which.

Errors use OpenAI's body ``{"error": {"message", "type", "code"}}``. ``fail_next`` queues
failures (a 429 with ``Retry-After``, a 503, ...), ``rejected_images`` makes requests carrying
those images fail with 400, ``requests`` records every request.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.fake_dashscope import (ChatTurn, QuietServer, RecordedRequest, _media,
                                        _tag_names, default_answer, fake_vector, out_of_order)


@dataclass(frozen=True)
class OpenAIFailure:
    status: int
    message: str = "failed"
    type: str = "server_error"
    retry_after: str | None = None


THROTTLED = OpenAIFailure(429, "Rate limit reached", "rate_limit_exceeded", retry_after="2")


class _Refused(Exception):
    def __init__(self, failure: OpenAIFailure):
        self.failure = failure


def _bad(message: str) -> _Refused:
    return _Refused(OpenAIFailure(400, message, "invalid_request_error"))


class FakeOpenAI:
    def __init__(self, *, api_key: str = "sk-fake-openai-key", dimension: int = 64,
                 latency: float = 0.0, seed: int = 0):
        self.api_key = api_key
        self.dimension = dimension
        self.latency = latency
        self.answer: Callable[[ChatTurn], str] = default_answer
        self.rejected_images: set[bytes] = set()
        self.requests: list[RecordedRequest] = []
        self._failures: deque[OpenAIFailure] = deque()
        self._shuffle = random.Random(seed)
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def fail_next(self, *failures: OpenAIFailure) -> None:
        with self._lock:
            self._failures.extend(failures)

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def _image(self, uri: Any) -> bytes:
        media = _media(uri)
        if not isinstance(media, bytes):
            raise _bad("image_url must be a base64 data URI on this server")
        if media in self.rejected_images:
            raise _bad("the image could not be processed")
        return media

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _bad("messages is required")
        system = " ".join(m["content"] for m in messages
                          if m.get("role") == "system" and isinstance(m.get("content"), str))
        users = [m for m in messages if m.get("role") == "user"]
        first = users[0].get("content") if users else ""
        parts = first if isinstance(first, list) else [{"type": "text", "text": first}]
        prompt = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
        images = [self._image(p["image_url"]["url"]) for p in parts
                  if p.get("type") == "image_url"]
        turn = ChatTurn(model=body.get("model", ""), system=system, prompt=prompt,
                        image=images[0] if images else None, messages=messages,
                        turn=len(users), tag_names=_tag_names(prompt),
                        wants_object='"description"' in prompt)
        text = self.answer(turn)
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": len(prompt) // 4 + 256 * len(images),
                          "completion_tokens": len(text) // 4,
                          "total_tokens": len(prompt) // 4 + 256 * len(images) + len(text) // 4}}

    def _items(self, body: dict[str, Any]) -> list[bytes | str]:
        """The contents to embed, in order: image bytes or texts."""
        if "messages" in body:  # the chat form: one conversation, one vector
            parts = [p for m in body["messages"] if isinstance(m.get("content"), list)
                     for p in m["content"]]
            images = [self._image(p["image_url"]["url"]) for p in parts
                      if p.get("type") == "image_url"]
            if len(images) != 1:
                raise _bad("the chat form embeds exactly one image per request")
            return [images[0]]
        given = body.get("input")
        given = [given] if isinstance(given, str) else given
        if not isinstance(given, list) or not given:
            raise _bad("input is required")
        items: list[bytes | str] = []
        for item in given:
            if isinstance(item, dict) and "image" in item:
                items.append(self._image(item["image"]))
            elif isinstance(item, dict) and "text" in item:
                items.append(str(item["text"]))
            elif isinstance(item, str) and body.get("modality") == "image":
                items.append(self._image(item))
            elif isinstance(item, str) and item:
                items.append(item)
            else:
                raise _bad("each input must be a non-empty string or an {image|text} object")
        return items

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("encoding_format", "float") != "float":
            raise _bad("this fake answers floats only")
        data = [{"object": "embedding", "index": i,
                 "embedding": fake_vector(item, self.dimension).tolist()}
                for i, item in enumerate(self._items(body))]
        with self._lock:
            data = out_of_order(data, self._shuffle)
        return {"object": "list", "data": data, "model": body.get("model", ""),
                "usage": {"prompt_tokens": len(data), "total_tokens": len(data)}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self
        routes = {"/v1/chat/completions": fake._chat, "/v1/embeddings": fake._embeddings}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _fail(self, failure: OpenAIFailure) -> None:
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                self._send(failure.status, {"error": {"message": failure.message,
                                                      "type": failure.type,
                                                      "code": failure.type}}, headers)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                fake.requests.append(RecordedRequest(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if fake.latency:
                    time.sleep(fake.latency)
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._fail(OpenAIFailure(401, "Incorrect API key provided",
                                             "invalid_request_error"))
                    return
                route = routes.get(self.path)
                if route is None or not isinstance(body, dict):
                    self._fail(OpenAIFailure(404, f"no route {self.path}", "not_found"))
                    return
                with fake._lock:
                    failure = fake._failures.popleft() if fake._failures else None
                if failure is not None:
                    self._fail(failure)
                    return
                try:
                    self._send(200, route(body))
                except _Refused as refused:
                    self._fail(refused.failure)

        return Handler
