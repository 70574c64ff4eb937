"""A fake DashScope server for tests: Qwen-VL chat and multimodal embeddings, in DashScope's
wire format (pai-compat §7), driven through the real dashscope SDK with ``base_address=``.

Serves the two model routes and the SDK's upload handshake for local files (pai-compat §7, as
ONE-PEACE's audio needs it): ``GET /api/v1/uploads?action=getPolicy`` hands out a policy whose
``upload_host`` is this server, the multipart ``POST`` there stores the file under the policy's
folder (checking the policy and signature it issued, as OSS does), and a model request may then
name it as ``oss://<key>`` when it carries ``X-DashScope-OssResourceResolve: enable``. Every
request is recorded, so a test can assert what was uploaded (``uploads``). Scriptable: ``answer`` decides the chat reply from the request (by default, tags chosen
from the image's bytes among the tags named in the prompt), ``fail_next`` queues failures,
``failure_rate`` throttles at random (seeded), ``latency`` slows every reply, and
``rejected_images`` makes requests carrying those images fail with HTTP 400. Embeddings are
deterministic functions of the content, so tests can compute the expected vectors; a batch's
``output.embeddings`` come back shuffled (seeded, never in request order) with their
``index`` fields, so a client must place them by ``index`` (``answer_orders`` records them).
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from mmdm.adapters.models.tagging_prompt import TAG_TABLE_HEADING

CHAT_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
UPLOAD_POLICY_PATH = "/api/v1/uploads"
UPLOAD_HOST_PATH = "/oss-upload"
EMBEDDING_PATH = "/api/v1/services/embeddings/multimodal-embedding/multimodal-embedding"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None


@dataclass(frozen=True)
class Failure:
    """An error reply: DashScope's body ``{"code", "message", "request_id"}``."""

    status: int
    code: str
    message: str
    retry_after: str | None = None  # the Retry-After header, when sent


THROTTLED = Failure(429, "Throttling.RateQuota",
                    "Requests rate limit exceeded, please try again later.")
INTERNAL_ERROR = Failure(500, "InternalError",
                         "An internal error has occured, please try again later.")


@dataclass(frozen=True)
class ChatTurn:
    """What the scripted model sees of one chat request."""

    model: str
    system: str
    prompt: str  # the text of the first user message
    image: bytes | str | None  # data-URI bytes, or the URL as sent
    messages: list[dict[str, Any]]
    turn: int  # 1 for the question, 2 for a repair request, ...
    tag_names: list[str]  # the names in the prompt's tag table
    wants_object: bool  # the prompt asks for {"tags", "description", "keywords"}


@dataclass(frozen=True)
class EmbeddingModel:
    dimensions: tuple[int, ...]  # the first is the default
    max_images: int
    fused: bool = False


EMBEDDING_MODELS = {
    "multimodal-embedding-v1": EmbeddingModel((1024,), 1),
    "tongyi-embedding-vision-plus": EmbeddingModel((1152, 1024, 512, 256, 128, 64), 8),
    "tongyi-embedding-vision-flash": EmbeddingModel((768, 512, 256, 128, 64), 8),
    "multimodal-embedding-one-peace-v1": EmbeddingModel((1536,), 8, fused=True),
}


def fake_vector(content: bytes | str, dimension: int) -> np.ndarray:
    """The fake's embedding of one item: seeded by the content, deliberately not unit length."""
    raw = content.encode() if isinstance(content, str) else content
    seed = int.from_bytes(hashlib.sha256(raw).digest()[:8], "big")
    return np.random.default_rng(seed).standard_normal(dimension) * 3.0


def chosen_tags(image: bytes | str | None, names: list[str]) -> list[str]:
    """The default model's tags: about a third of the names, decided by the image bytes."""
    raw = image.encode() if isinstance(image, str) else (image or b"")
    return [name for name in names
            if hashlib.sha256(raw + name.encode()).digest()[0] % 3 == 0]


def default_answer(turn: ChatTurn) -> str:
    tags = chosen_tags(turn.image, turn.tag_names)
    if not turn.wants_object:
        return json.dumps(tags, ensure_ascii=False)
    digest = hashlib.sha256(turn.image if isinstance(turn.image, bytes)
                            else str(turn.image).encode()).hexdigest()
    return json.dumps({"tags": tags, "description": f"A test image {digest[:8]}.",
                       "keywords": [f"k{digest[i]}" for i in range(5)]}, ensure_ascii=False)


def fenced(text: str, lang: str = "json") -> str:
    return f"```{lang}\n{text}\n```"


def in_prose(text: str) -> str:
    return f"Sure! Looking at the image, these tags apply:\n{text}\nLet me know if you need more."


def _tag_names(prompt: str) -> list[str]:
    start = prompt.find(TAG_TABLE_HEADING)
    if start < 0:
        return []
    brace = prompt.find("{", start)
    try:
        table = json.JSONDecoder().raw_decode(prompt, brace)[0]
    except ValueError:
        return []
    return list(table) if isinstance(table, dict) else []


def _media(value: Any, uploaded: dict[str, bytes] | None = None) -> bytes | str | None:
    """Bytes of a data URI or of a file uploaded here (``uploaded``: the ``oss://`` keys this
    request may resolve), a URL as is; None for anything a server could not fetch."""
    if not isinstance(value, str):
        return None
    if value.startswith("data:") and ";base64," in value:
        return base64.b64decode(value.split(";base64,", 1)[1])
    if value.startswith(("http://", "https://")):
        return value
    if uploaded is not None and value.startswith("oss://"):
        return uploaded.get(value[len("oss://"):])
    return None


def _form(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()}


def out_of_order(items: list[Any], rng: random.Random) -> list[Any]:
    """``items`` shuffled, and never in their own order when there are two or more: the
    documentation shows replies in ``index`` order but the field exists to say which is which,
    and a client relying on the order would swap vectors between images unnoticed."""
    shuffled = rng.sample(items, len(items))
    if len(items) > 1 and shuffled == items:
        shuffled = shuffled[1:] + shuffled[:1]
    return shuffled


class _BadRequest(Exception):
    def __init__(self, failure: Failure):
        self.failure = failure


def _invalid(message: str) -> _BadRequest:
    return _BadRequest(Failure(400, "InvalidParameter", message))


class QuietServer(ThreadingHTTPServer):
    """A client that timed out has closed its socket; the late reply's broken pipe is expected."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class FakeDashScope:
    def __init__(self, *, api_key: str = "sk-fake-dashscope-key", latency: float = 0.0,
                 failure_rate: float = 0.0, random_failure: Failure = THROTTLED, seed: int = 0,
                 echo_key_in_errors: bool = False):
        self.api_key = api_key
        self.latency = latency
        self.failure_rate = failure_rate
        self.random_failure = random_failure
        self.echo_key_in_errors = echo_key_in_errors  # a careless server, for redaction tests
        self.answer: Callable[[ChatTurn], str] = default_answer
        self.rejected_images: set[bytes] = set()
        self.requests: list[RecordedRequest] = []
        self.calls: Counter[str] = Counter()  # "chat" / "embedding" -> requests, failed ones too
        self.answer_orders: list[list[int]] = []  # the index fields of each embeddings reply
        self.uploads: dict[str, bytes] = {}  # oss key -> the bytes uploaded through a policy
        self._policies: dict[str, str] = {}  # upload_dir -> the policy issued for it
        self._failures: deque[Failure] = deque()
        self._random = random.Random(seed)
        self._shuffle = random.Random(seed)  # its own, so failure draws stay as they were
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        """What the SDK takes as ``base_address``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"

    def fail_next(self, *failures: Failure) -> None:
        """The next requests (any route) fail with these, in order."""
        with self._lock:
            self._failures.extend(failures)

    def start(self) -> FakeDashScope:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_failure(self) -> Failure | None:
        with self._lock:
            if self._failures:
                return self._failures.popleft()
            if self.failure_rate and self._random.random() < self.failure_rate:
                return self.random_failure
        return None

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = (body.get("input") or {}).get("messages")
        if not messages:
            raise _invalid('Either "prompt" or "messages" must exist and cannot both be none')
        system = " ".join(part.get("text", "") for m in messages if m.get("role") == "system"
                          for part in m.get("content", []))
        users = [m for m in messages if m.get("role") == "user"]
        first = users[0].get("content", []) if users else []
        prompt = " ".join(part["text"] for part in first if "text" in part)
        image = None
        for part in first:
            if "image" in part:
                image = _media(part["image"])
                if image is None:
                    raise _BadRequest(Failure(400, "InvalidParameter.DataInspection",
                                              "The media format is not supported or incorrect"
                                              " for the data inspection."))
                if image in self.rejected_images:
                    raise _BadRequest(Failure(400, "DataInspectionFailed",
                                              "Input data may contain inappropriate content."))
        turn = ChatTurn(model=body.get("model", ""), system=system, prompt=prompt, image=image,
                        messages=messages, turn=len(users), tag_names=_tag_names(prompt),
                        wants_object='"description"' in prompt)
        text = self.answer(turn)
        return {"output": {"choices": [{"finish_reason": "stop", "message": {
                    "role": "assistant", "content": [{"text": text}]}}]},
                "usage": {"input_tokens": len(prompt), "output_tokens": len(text),
                          "image_tokens": 256 if image is not None else 0},
                "request_id": str(uuid.uuid4())}

    def _upload_policy(self, query: dict[str, list[str]]) -> dict[str, Any]:
        if query.get("action") != ["getPolicy"] or not query.get("model"):
            raise _invalid("action=getPolicy and model are required")
        upload_dir = f"dashscope-instant/{uuid.uuid4().hex}"
        policy = base64.b64encode(json.dumps({"dir": upload_dir}).encode()).decode()
        with self._lock:
            self._policies[upload_dir] = policy
        return {"request_id": str(uuid.uuid4()), "data": {
            "policy": policy, "signature": self._signature(policy), "upload_dir": upload_dir,
            "upload_host": self.base_url.rsplit("/api/v1", 1)[0] + UPLOAD_HOST_PATH,
            "expire_in_seconds": 300, "max_file_size_mb": 100, "capacity_limit_mb": 999999,
            "oss_access_key_id": "fake-oss-key-id", "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"}}

    def _signature(self, policy: str) -> str:
        return hashlib.sha256(f"{self.api_key}:{policy}".encode()).hexdigest()

    def _store_upload(self, fields: dict[str, bytes]) -> bool:
        """Keep an uploaded file when its form carries a policy this server issued for the
        folder it names, with that policy's signature (what OSS checks of a POST upload)."""
        key = (fields.get("key") or b"").decode()
        policy = (fields.get("policy") or b"").decode()
        with self._lock:
            issued = self._policies.get(key.rsplit("/", 1)[0])
            if issued is None or issued != policy or "file" not in fields or (
                    fields.get("Signature") or b"").decode() != self._signature(policy):
                return False
            self.uploads[key] = fields["file"]
        return True

    def _embedding(self, body: dict[str, Any], resolve: bool = False) -> dict[str, Any]:
        model = EMBEDDING_MODELS.get(body.get("model", ""))
        if model is None:
            raise _invalid("Model not exist.")
        contents = (body.get("input") or {}).get("contents")
        if not contents:
            raise _BadRequest(Failure(400, "BadRequest.EmptyInput",
                                      "Required input parameter missing from request."))
        dimension = (body.get("parameters") or {}).get("dimension", model.dimensions[0])
        if dimension not in model.dimensions:
            raise _invalid(f"dimension must be one of {list(model.dimensions)}")
        images = sum(1 for item in contents if "image" in item)
        if images > model.max_images:
            raise _invalid(f"at most {model.max_images} image(s) per request")
        vectors, kinds, factors = [], [], []
        for item in contents:
            if "text" in item:
                vectors.append(fake_vector(item["text"], dimension))
                kinds.append("text")
            elif "audio" in item and model.fused:  # ONE-PEACE only
                audio = _media(item["audio"], self.uploads if resolve else None)
                if not isinstance(audio, bytes):
                    raise _invalid("The provided URL does not appear to be valid.")
                vectors.append(fake_vector(audio, dimension))
                kinds.append("audio")
            elif "image" in item:
                media = _media(item["image"], self.uploads if resolve else None)
                if media is None:
                    raise _invalid("The provided URL does not appear to be valid.")
                if media in self.rejected_images:
                    raise _BadRequest(Failure(400, "DataInspectionFailed",
                                              "Input data may contain inappropriate content."))
                vectors.append(fake_vector(media, dimension))
                kinds.append("image")
            else:
                raise _invalid("each content item needs a text or image field")
            factors.append(float(item.get("factor", 1.0)))
        request_id = str(uuid.uuid4())
        if model.fused:
            fused = np.average(np.stack(vectors), axis=0, weights=factors)
            return {"output": {"embedding": fused.tolist()},
                    "usage": {"image": {"measure": images, "weight": 1}, "total_usage": len(kinds)},
                    "request_id": request_id}
        items = [{"index": i, "embedding": v.tolist(), "type": kind}
                 for i, (v, kind) in enumerate(zip(vectors, kinds))]
        with self._lock:
            items = out_of_order(items, self._shuffle)
            self.answer_orders.append([item["index"] for item in items])
        return {"output": {"embeddings": items},
                "usage": {"input_tokens": 4 * kinds.count("text"), "image_count": images,
                          "duration": 0},
                "request_id": request_id}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self
        routes = {CHAT_PATH: ("chat", lambda body, _: fake._chat(body)),
                  EMBEDDING_PATH: ("embedding", fake._embedding)}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled session expects
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fail(self, failure: Failure) -> None:
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                self._send(failure.status, {"code": failure.code, "message": failure.message,
                                            "request_id": str(uuid.uuid4())}, headers)

            def _record(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw  # a multipart upload
                with fake._lock:
                    fake.requests.append(RecordedRequest(
                        self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                        body))
                return body

            def _authorised(self) -> bool:
                presented = self.headers.get("Authorization", "")
                if presented == f"Bearer {fake.api_key}":
                    return True
                message = "Invalid API-key provided."
                if fake.echo_key_in_errors:
                    message = f"Invalid API-key provided: {presented}"
                self._fail(Failure(401, "InvalidApiKey", message))
                return False

            def do_GET(self) -> None:
                self._record()
                url = urlsplit(self.path)
                if url.path != UPLOAD_POLICY_PATH:
                    return self._send(404, {"code": "NotFound", "message": "Not found."})
                if not self._authorised():
                    return None
                try:
                    self._send(200, fake._upload_policy(parse_qs(url.query)))
                except _BadRequest as exc:
                    self._fail(exc.failure)

            def do_POST(self) -> None:
                body = self._record()
                if self.path == UPLOAD_HOST_PATH:  # OSS: the policy is the credential
                    fields = _form(self.headers.get("Content-Type", ""), body or b"")
                    if fake._store_upload(fields):
                        return self._send(200, {})
                    return self._send(403, {"code": "AccessDenied",
                                            "message": "Invalid according to Policy"})
                route = routes.get(self.path)
                if route is None:
                    return self._send(404, {"code": "NotFound", "message": "Not found."})
                name, handle = route
                with fake._lock:
                    fake.calls[name] += 1
                if fake.latency:
                    time.sleep(fake.latency)
                if not self._authorised():
                    return None
                presented = self.headers.get("Authorization", "")
                failure = fake._next_failure()
                if failure is not None:
                    if fake.echo_key_in_errors:
                        failure = Failure(failure.status, failure.code,
                                          f"{failure.message} (key {presented})",
                                          failure.retry_after)
                    return self._fail(failure)
                try:
                    resolve = self.headers.get("X-DashScope-OssResourceResolve") == "enable"
                    payload = handle(body if isinstance(body, dict) else {}, resolve)
                except _BadRequest as exc:
                    return self._fail(exc.failure)
                self._send(200, payload)

        return Handler
