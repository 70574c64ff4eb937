"""A fake PAI-EAS GME embedding service for tests, in the format of pai-compat §7.6.

One route, ``POST <path>``, with the raw token as ``Authorization`` (401 otherwise, as the EAS
gateway answers). The verdict sits in the JSON body with HTTP 200: ``status_code`` 200, 204
(partial success: the failed items are missing from ``output.embeddings`` and ``message``
lists why) or 400 (every item failed, or the body is not the documented format).
``failing_images`` picks the items that fail, ``fail_next`` queues raw HTTP failures (429,
503, ...), ``latency`` slows every reply. Vectors are ``fake_vector`` of the content; they come
back shuffled (seeded, never in request order) with their ``index`` fields, which is all that
says which item a vector belongs to (``answer_orders`` records them).
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.fake_dashscope import QuietServer, RecordedRequest, fake_vector, out_of_order


@dataclass(frozen=True)
class HttpFailure:
    status: int
    body: str = ""
    retry_after: str | None = None


class FakeEas:
    def __init__(self, *, token: str = "eas-fake-token==", path: str = "/api/predict/gme_2b",
                 dimension: int = 1536, latency: float = 0.0, seed: int = 0):
        self.token = token
        self.path = path
        self.dimension = dimension
        self.latency = latency
        self.failing_images: set[bytes] = set()
        self.requests: list[RecordedRequest] = []
        self.calls = 0
        self.answer_orders: list[list[int]] = []  # the index fields of each reply
        self._shuffle = random.Random(seed)
        self._failures: deque[HttpFailure] = deque()
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def fail_next(self, *failures: HttpFailure) -> None:
        with self._lock:
            self._failures.extend(failures)

    def start(self) -> FakeEas:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, body: Any) -> dict[str, Any]:
        contents = (body.get("input") or {}).get("contents") if isinstance(body, dict) else None
        if not isinstance(contents, list) or not contents:
            return {"status_code": 400, "output": {"embeddings": []},
                    "message": ["Invalid input data: must be a list of strings or dict"]}
        embeddings, errors = [], []
        for index, item in enumerate(contents):
            if isinstance(item, str):  # the documented list(str) form: texts
                item = {"text": item}
            if "text" in item:
                content, kind = item["text"], "text"
            elif str(item.get("image", "")).startswith("data:") and ";base64," in item["image"]:
                content, kind = base64.b64decode(item["image"].split(";base64,", 1)[1]), "image"
            else:
                errors.append(f"Invalid input data at index {index}: unsupported item")
                continue
            if kind == "image" and content in self.failing_images:
                errors.append(f"Internal execute error at index {index}: cannot decode image")
                continue
            embeddings.append({"index": index, "type": kind,
                               "embedding": fake_vector(content, self.dimension).tolist()})
        with self._lock:
            embeddings = out_of_order(embeddings, self._shuffle)
            self.answer_orders.append([item["index"] for item in embeddings])
        status = 200 if not errors else (204 if embeddings else 400)
        return {"status_code": status, "message": errors if errors else "",
                "output": {"embeddings": embeddings}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(404, b"Not Found", "text/plain")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with fake._lock:
                    fake.requests.append(RecordedRequest(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                        body))
                if self.path != fake.path:
                    return self._send(404, b"Not Found", "text/plain")
                with fake._lock:
                    fake.calls += 1
                    failure = fake._failures.popleft() if fake._failures else None
                if fake.latency:
                    time.sleep(fake.latency)
                if self.headers.get("Authorization") != fake.token:
                    return self._send(401, b"Unauthorized", "text/plain")
                if failure is not None:
                    headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                    return self._send(failure.status, failure.body.encode(), "text/plain",
                                      headers)
                answer = json.dumps(fake._answer(body)).encode()
                self._send(200, answer, "application/json")

        return Handler
