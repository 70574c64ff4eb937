"""Self-hosted and hosted models behind an OpenAI-compatible API, through the official ``openai``
client: vLLM, SGLang, Ollama, LM Studio, DashScope's compatible mode and the like.

Tagging is a chat completion with the image as a data URI (``image_url`` content part), the
same prompt and answer parsing as the other taggers. Text embeddings are the standard
``/v1/embeddings`` ``input`` list. Images have no one standard; ``image_input`` names the form
the server documents:

- ``messages`` (vLLM, SGLang: multimodal embedding models such as GME or VLM2Vec): one image per
  request as a chat ``messages`` list with an ``image_url`` part, in the request body;
- ``objects`` (Jina-style): ``input: [{"image": "<data URI>"}, ...]``, batched;
- ``data-uri`` (Infinity-style): ``input: ["<data URI>", ...]`` with ``modality: "image"``.

The client's own retries are off: the jobs retry with backoff (and Retry-After) themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import AdapterError, ConfigError, NotSupportedError
from .base import ImageInput, TagDefinition, TagResult, l2_normalise
from .image_prep import limits_for, prepared
from .imagedata import image_reference
from .service_errors import (ModelServiceError, request_isolating_refusals,
                             retry_after_seconds, shorten)
from .tagging_prompt import ask_with_repair, build_tag_prompt
from .usage import Usage, field

IMAGE_INPUTS = ("messages", "objects", "data-uri")
DEFAULT_TIMEOUT_S = 120.0


class _OpenAIClient:
    """The ``openai`` client with its failures turned into ``AdapterError``s."""

    service = "OpenAI-compatible"

    def __init__(self, *, base_url: str, api_key: str | None, timeout: float):
        import openai

        self.base_url = base_url.rstrip("/")
        # Servers without keys (a local vLLM or Ollama) still need a non-empty value here.
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "none",
                                     timeout=timeout, max_retries=0)
        self._openai = openai
        self.usage = Usage()

    def _count(self, resp: Any, images: int) -> None:
        used = getattr(resp, "usage", None)
        self.usage.add(Calls=1, Images=images, InputTokens=field(used, "prompt_tokens"),
                       OutputTokens=field(used, "completion_tokens"))

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        openai = self._openai
        try:
            return fn(**kwargs)
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            error = body.get("error") if isinstance(body.get("error"), dict) else body
            code = str(error.get("code") or error.get("type") or "")
            detail = shorten(error.get("message") or exc.message)
            raise ModelServiceError(
                f"{self.service} {what} ({self.model}) failed: HTTP {exc.status_code} {code}: "
                f"{detail}", status=exc.status_code, code=code,
                retry_after=retry_after_seconds(dict(exc.response.headers))) from None
        except openai.APITimeoutError:
            raise AdapterError(f"{self.service} {what} ({self.model}) timed out at "
                               f"{self.base_url}", retriable=True) from None
        except openai.APIConnectionError as exc:
            raise AdapterError(f"{self.service} {what} ({self.model}): {self.base_url} could "
                               f"not be reached: {shorten(exc)}", retriable=True) from None


class OpenAITagger(_OpenAIClient):
    """Tags images with a vision-language model served behind chat completions."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, temperature: float | None = None,
                 max_tokens: int | None = None):
        self.model = model
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout)
        self.temperature, self.max_tokens = temperature, max_tokens
        self.image_limits = limits_for("openai", model)

    def tag(self, image: ImageInput, definition: TagDefinition, *, describe: bool = False
            ) -> TagResult:
        """Ask once; if the answer holds no JSON, ask once more to repair it.

        Raises:
            AdapterError: the service failed (``retriable`` for 408/429/5xx/timeouts).
            TagParseError: neither answer could be read.
        """
        prompt = build_tag_prompt(definition, describe=describe)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": image_reference(prepared(self, image))}},
                {"type": "text", "text": prompt.user}]},
        ]
        return ask_with_repair(self._ask, messages,
                               lambda role, text: {"role": role, "content": text},
                               definition, describe=describe, model=self.model, uri=image.uri)

    def _ask(self, messages: list[dict[str, Any]]) -> str:
        params: dict[str, Any] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        resp = self._call("chat", self._client.chat.completions.create, model=self.model,
                          messages=messages, **params)
        self._count(resp, images=1)
        try:
            content = resp.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            content = None
        if not content:
            raise AdapterError(f"{self.service} chat ({self.model}): the response has no "
                               "answer", retriable=True)
        return content


class OpenAIEmbedder(_OpenAIClient):
    """Image (and text) vectors from an embedding model behind ``/v1/embeddings``."""

    def __init__(self, *, base_url: str, model: str, dimension: int,
                 api_key: str | None = None, image_input: str = "messages",
                 supports_text: bool = True, max_batch: int = 16,
                 timeout: float = DEFAULT_TIMEOUT_S):
        if image_input not in IMAGE_INPUTS:
            raise ConfigError(f"image_input must be one of {', '.join(IMAGE_INPUTS)}, not "
                              f"{image_input!r}")
        if int(dimension) <= 0:
            raise ConfigError("dimension must be the model's vector size, e.g. 1536")
        self.model = model
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout)
        self.dimension = int(dimension)
        self.image_input = image_input
        self.image_limits = limits_for("openai", model)
        self.supports_text = bool(supports_text)
        # A chat-form request embeds one conversation: one image per request.
        self.max_batch = 1 if image_input == "messages" else max(1, int(max_batch))

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        """Batches of ``max_batch``; an image the service refuses (400/413) becomes that
        entry's error, found by retrying its batch one image at a time.

        Raises:
            AdapterError: a failure of the whole request (throttling, 5xx, timeout, bad key).
        """
        results: list[np.ndarray | Exception | None] = [None] * len(images)
        pending: list[tuple[int, str]] = []
        for i, image in enumerate(images):
            try:
                ready = prepared(self, image, prefer_url=False)
                pending.append((i, image_reference(ready, prefer_url=False)))
            except AdapterError as exc:
                results[i] = exc
        for start in range(0, len(pending), self.max_batch):
            request_isolating_refusals(pending[start:start + self.max_batch],
                                       self._request, results)
        return [r if r is not None else AdapterError("not embedded", retriable=True)
                for r in results]

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        if not self.supports_text:
            raise NotSupportedError(f"{self.model} is configured as image-only "
                                    "(supports_text false): search by image")
        if any(not t.strip() for t in texts):
            raise AdapterError("cannot embed an empty text", is_input_error=True)
        resp = self._call("embedding", self._client.embeddings.create, model=self.model,
                          input=list(texts), encoding_format="float")
        self._count(resp, images=0)
        return self._vectors(resp, len(texts))

    def _request(self, uris: Sequence[str]) -> list[np.ndarray]:
        body: dict[str, Any] = {"model": self.model, "encoding_format": "float"}
        if self.image_input == "messages":
            body["messages"] = [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": uris[0]}},
                {"type": "text", "text": ""}]}]
        elif self.image_input == "objects":
            body["input"] = [{"image": u} for u in uris]
        else:
            body.update(input=list(uris), modality="image")
        # ``embeddings.create`` types ``input`` as text; the same client posts the other forms.
        resp = self._call("embedding", self._client.post, path="/embeddings", body=body,
                          cast_to=self._openai.types.CreateEmbeddingResponse)
        self._count(resp, images=len(uris))
        return self._vectors(resp, len(uris))

    def _vectors(self, resp: Any, count: int) -> list[np.ndarray]:
        by_index = {item.index: item.embedding for item in getattr(resp, "data", None) or []}
        vectors = []
        for i in range(count):
            values = by_index.get(i)
            if not values:
                raise AdapterError(f"{self.service} embedding ({self.model}) returned no vector "
                                   f"for item {i}", retriable=True)
            if len(values) != self.dimension:
                raise AdapterError(f"{self.service} embedding ({self.model}) returned "
                                   f"{len(values)} values, configured for {self.dimension}",
                                   is_input_error=True)
            vectors.append(l2_normalise(values))
        return vectors
