"""GME embeddings served on PAI-EAS (Model Gallery deployment), in the format of pai-compat §7.6.

``POST <endpoint>`` with the raw token as ``Authorization`` and
``{"input": {"contents": [{"image": "data:image/...;base64,..."}, {"text": ...}]}}``. The
answer's own ``status_code`` says 200 (all done), 204 (partial success: failed items are
missing from ``output.embeddings`` and their reasons are in ``message``) or 400 (failure).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import requests

from ..errors import AdapterError, ConfigError
from .base import ImageInput, l2_normalise
from .imagedata import image_reference
from .usage import Usage
from .image_prep import limits_for, prepared
from .service_errors import ModelServiceError, retry_after_seconds, shorten, transport_error

GME_DIMENSIONS = {"gme-Qwen2-VL-2B-Instruct": 1536, "gme-Qwen2-VL-7B-Instruct": 3584}
DEFAULT_DIMENSION = 1536  # GME-2B, what the user guide deploys
DEFAULT_TIMEOUT_S = 60.0
# Items per request. The guide's client sends one image per request; the service takes a list,
# and a few per request cut the HTTP overhead without making a single failure costly.
DEFAULT_MAX_BATCH = 8


class EasGmeEmbedder:
    """Image and text vectors from a GME model on an EAS endpoint."""

    supports_text = True

    def __init__(self, *, endpoint: str, token: str, model: str = "gme-Qwen2-VL-2B-Instruct",
                 dimension: int | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 max_batch: int = DEFAULT_MAX_BATCH):
        if not endpoint:
            raise ConfigError("the EAS GME embedder needs the service endpoint")
        if not token:
            raise ConfigError("the EAS GME embedder needs the service token")
        if int(max_batch) < 1:
            raise ConfigError(f"max_batch must be at least 1, not {max_batch}")
        self.endpoint = endpoint if "://" in endpoint else "http://" + endpoint
        self._token = token
        self.model = model
        self.dimension = int(dimension or GME_DIMENSIONS.get(model, DEFAULT_DIMENSION))
        self.timeout = float(timeout)
        self.max_batch = int(max_batch)
        self._session = requests.Session()
        self.usage = Usage()  # EAS reports no tokens: calls and images
        self.image_limits = limits_for("eas", model)

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"EasGmeEmbedder(model={self.model!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        self._session.close()

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        """One entry per image: its vector, or the error the service gave for it.

        Raises:
            AdapterError: a failure of the whole request (429/5xx/timeout retriable; bad token).
        """
        results: list[np.ndarray | Exception | None] = [None] * len(images)
        pending: list[tuple[int, dict[str, str]]] = []
        for i, image in enumerate(images):
            try:
                # Inline bytes are the documented form; a URL only when there are no bytes.
                ready = prepared(self, image, prefer_url=False)
                pending.append((i, {"image": image_reference(ready, prefer_url=False)}))
            except AdapterError as exc:
                results[i] = exc
        for start in range(0, len(pending), self.max_batch):
            batch = pending[start:start + self.max_batch]
            for (i, _), entry in zip(batch, self._request([item for _, item in batch])):
                results[i] = entry
        return [r if r is not None else AdapterError("not embedded", retriable=True)
                for r in results]

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        vectors: list[np.ndarray] = []
        for start in range(0, len(texts), self.max_batch):
            for entry in self._request([{"text": t} for t in texts[start:start + self.max_batch]]):
                if isinstance(entry, Exception):
                    raise entry
                vectors.append(entry)
        return vectors

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")

    def _request(self, contents: list[dict[str, str]]) -> list[np.ndarray | Exception]:
        service = f"EAS GME ({self.model})"
        body = json.dumps({"input": {"contents": contents}}).encode()
        try:
            resp = self._session.post(self.endpoint, data=body, timeout=self.timeout,
                                      headers={"Authorization": self._token,
                                               "Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise AdapterError(self._redact(transport_error(service, exc).message),
                               retriable=True) from None
        answer = _json_object(resp)
        status = resp.status_code
        if status == 200 and not answer:
            raise AdapterError(f"{service}: unreadable response (not a JSON object)",
                               retriable=True)
        if status == 200 and isinstance(answer.get("status_code"), int):
            status = answer["status_code"]  # EAS answers HTTP 200 and puts its verdict inside
        detail = self._redact(_messages(answer) or shorten(resp.text))
        if status == 400:
            # The whole request failed over its content: every item carries that reason.
            error = ModelServiceError(f"{service} refused the request: {detail}", status=400)
            return [error] * len(contents)
        if status not in (200, 204):
            raise ModelServiceError(f"{service} failed: HTTP {status}: {detail}", status=status,
                                    retry_after=retry_after_seconds(resp.headers))
        self.usage.add(Calls=1, Images=sum(1 for item in contents if "image" in item))
        output = answer.get("output") if isinstance(answer.get("output"), dict) else {}
        by_index = {item.get("index"): item.get("embedding")
                    for item in output.get("embeddings") or [] if isinstance(item, dict)}
        reason = detail or "no vector returned"
        return [self._vector(by_index[i]) if by_index.get(i) else
                AdapterError(f"{service}: item {i} failed: {reason}", is_input_error=True)
                for i in range(len(contents))]

    def _vector(self, values: Sequence[float]) -> np.ndarray:
        if len(values) != self.dimension:
            raise AdapterError(f"EAS GME ({self.model}) returned {len(values)} values, "
                               f"configured for {self.dimension}", is_input_error=True)
        return l2_normalise(values)


def _json_object(resp: requests.Response) -> dict[str, Any]:
    try:
        answer = resp.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _messages(answer: dict[str, Any]) -> str:
    """The ``message`` field, documented as a list of strings, seen as a plain string too."""
    message = answer.get("message")
    if isinstance(message, list):
        return shorten("; ".join(str(m) for m in message if m))
    return shorten(message) if message else ""
