"""DashScope (Alibaba Cloud Model Studio): Qwen-VL tagging and multimodal embeddings.

Calls go through the official SDK's legacy ``.call()`` API with ``base_address`` and
``api_key`` passed per call, so two connections never share module-level state. That API does
not raise on HTTP errors (it returns ``status_code``), does not retry, and lets
``requests`` exceptions through; ``_DashScopeClient._call`` turns all three into
``AdapterError``s. Images go inline as data URIs (or as a signed URL): a value that looks like
a local path would make the SDK upload that file to DashScope's own storage first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dashscope
import numpy as np
import requests
from dashscope.common.error import DashScopeException
from dashscope.utils.oss_utils import OssUtils

from ..errors import AdapterError, ConfigError, NotSupportedError
from .base import ImageInput, TagDefinition, TagResult, l2_normalise
from .imagedata import image_reference
from .usage import Usage, field
from .image_prep import limits_for, prepared
from .service_errors import (
    ModelServiceError,
    request_isolating_refusals,
    retry_after_seconds,
    shorten,
    transport_error,
)
from .tagging_prompt import ask_with_repair, build_tag_prompt

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"
DEFAULT_TIMEOUT_S = 60.0  # the SDK's own default is 300 s, too long to notice a stuck call


def normalise_base_url(base_url: str | None) -> str:
    """The SDK's ``base_address`` (``https://host/api/v1``) from what a connection holds.

    Connections store either that, a host without a scheme, or a full service endpoint
    (the console's embedding form asks for ``.../api/v1/services/embeddings/...``); the SDK
    appends ``/services/<group>/<task>/<function>`` itself.
    """
    if not base_url:
        return DEFAULT_BASE_URL
    url = base_url.strip()
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    path = parts.path.split("/services/", 1)[0].rstrip("/")
    if path in ("", "/api"):
        path = "/api/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _sdk_safe_text(text: str) -> str:
    """Text the SDK will send as text rather than treat as a file to upload.

    The SDK checks ``text`` items like images: ``file://`` and ``oss://`` prefixes, or a string
    naming an existing local file, are uploaded (or fail as a missing file). A leading space
    changes nothing for the model and keeps a query such as ``README.md`` a query.
    """
    looks_like_file = text.startswith(("file://", "oss://")) or (
        not text.startswith("http") and os.path.isfile(os.path.expanduser(text)))
    return " " + text if looks_like_file else text


class _DashScopeClient:
    """Settings and the error mapping both DashScope adapters share."""

    model: str

    def __init__(self, *, api_key: str, base_url: str | None, workspace: str | None,
                 timeout: float):
        if not api_key:
            raise ConfigError("DashScope needs an api_key")
        self._api_key = api_key
        self.base_url = normalise_base_url(base_url)
        self.workspace = workspace or None
        self.timeout = float(timeout)
        self.usage = Usage()

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***")

    def _call(self, api: Callable[..., Any], what: str, **kwargs: Any) -> Any:
        """One SDK call; returns the response of a 200, raises ``AdapterError`` otherwise."""
        service = f"DashScope {what} ({self.model})"
        try:
            resp = api(model=self.model, api_key=self._api_key, base_address=self.base_url,
                       workspace=self.workspace, request_timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            err = transport_error(service, exc)
            raise AdapterError(self._redact(err.message), retriable=True) from None
        except DashScopeException as exc:
            raise AdapterError(self._redact(f"{service}: {shorten(exc)}"),
                               is_input_error=True) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # The SDK builds typed responses from the body and trips over malformed ones.
            raise AdapterError(f"{service}: unreadable response ({type(exc).__name__})",
                               retriable=True) from None
        status = int(resp.status_code)
        if status == 200:
            return resp
        code = str(resp.code or "")
        detail = self._redact(shorten(resp.message or ""))
        request_id = f" (request {resp.request_id})" if resp.request_id else ""
        raise ModelServiceError(f"{service} failed: HTTP {status} {code}: {detail}{request_id}",
                                status=status, code=code,
                                retry_after=retry_after_seconds(resp.headers))


class DashScopeTagger(_DashScopeClient):
    """Tags images with a Qwen-VL model (``qwen-vl-max``, ``qwen-vl-plus``)."""

    def __init__(self, *, api_key: str, model: str = "qwen-vl-max", base_url: str | None = None,
                 workspace: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 temperature: float | None = None):
        self.model = model
        super().__init__(api_key=api_key, base_url=base_url, workspace=workspace,
                         timeout=timeout)
        self.temperature = temperature
        self.image_limits = limits_for("dashscope", model)

    def tag(self, image: ImageInput, definition: TagDefinition, *, describe: bool = False
            ) -> TagResult:
        """Ask once; if the answer holds no JSON, ask once more to repair it.

        Raises:
            AdapterError: the service failed (``retriable`` for 408/429/5xx/timeouts).
            TagParseError: neither answer could be read.
        """
        prompt = build_tag_prompt(definition, describe=describe)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": [{"text": prompt.system}]},
            {"role": "user", "content": [{"image": image_reference(prepared(self, image))},
                                         {"text": prompt.user}]},
        ]
        return ask_with_repair(self._ask, messages,
                               lambda role, text: {"role": role, "content": [{"text": text}]},
                               definition, describe=describe, model=self.model, uri=image.uri)

    def _ask(self, messages: list[dict[str, Any]]) -> str:
        params: dict[str, Any] = {"result_format": "message"}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        resp = self._call(dashscope.MultiModalConversation.call, "chat", messages=messages,
                          **params)
        used = getattr(resp, "usage", None) or {}
        self.usage.add(Calls=1, Images=1, InputTokens=field(used, "input_tokens"),
                       OutputTokens=field(used, "output_tokens"),
                       ImageTokens=field(used, "image_tokens"))
        try:
            content = resp.output["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError, AttributeError):
            raise AdapterError(f"DashScope chat ({self.model}): the response has no answer",
                               retriable=True) from None
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))


@dataclass(frozen=True)
class EmbeddingModelSpec:
    """What one DashScope embedding model accepts (pai-compat §7.3, §7.4)."""

    dimensions: tuple[int, ...]  # the first one is the default
    max_images: int  # images per request
    sends_dimension: bool  # whether the ``dimension`` parameter exists
    fused: bool = False  # ONE-PEACE: one weighted-average vector per request


# ONE-PEACE's audio: wav, mp3 or flac up to 5 MB (and 15 s, which the service checks).
AUDIO_FORMATS = ("wav", "mp3", "flac")
MAX_AUDIO_BYTES = 5 * 1024 * 1024

EMBEDDING_MODELS: dict[str, EmbeddingModelSpec] = {
    # One image per call: the older documentation version; the newer one says 8.
    "multimodal-embedding-v1": EmbeddingModelSpec((1024,), 1, sends_dimension=False),
    "tongyi-embedding-vision-plus": EmbeddingModelSpec(
        (1152, 1024, 512, 256, 128, 64), 8, sends_dimension=True),
    "tongyi-embedding-vision-flash": EmbeddingModelSpec(
        (768, 512, 256, 128, 64), 8, sends_dimension=True),
    # Every item of a request is fused into one vector, so one image per request.
    "multimodal-embedding-one-peace-v1": EmbeddingModelSpec(
        (1536,), 1, sends_dimension=False, fused=True),
}


class DashScopeEmbedder(_DashScopeClient):
    """Image and text vectors from a DashScope multimodal embedding model."""

    supports_text = True

    def __init__(self, *, api_key: str, model: str = "multimodal-embedding-v1",
                 base_url: str | None = None, workspace: str | None = None,
                 dimension: int | None = None, timeout: float = DEFAULT_TIMEOUT_S):
        spec = EMBEDDING_MODELS.get(model)
        if spec is None:
            raise ConfigError(f"unknown DashScope embedding model {model!r}; known: "
                              f"{', '.join(EMBEDDING_MODELS)}")
        if dimension is not None and int(dimension) not in spec.dimensions:
            raise ConfigError(f"{model} makes vectors of {spec.dimensions} dimensions, "
                              f"not {dimension}")
        self.model = model
        super().__init__(api_key=api_key, base_url=base_url, workspace=workspace,
                         timeout=timeout)
        self.spec = spec
        self.fuses_inputs = spec.fused
        self.embeds_audio = spec.fused  # ONE-PEACE
        self.image_limits = limits_for("dashscope", model)
        self.dimension = int(dimension) if dimension is not None else spec.dimensions[0]
        self.max_batch = spec.max_images

    def __repr__(self) -> str:
        return (f"DashScopeEmbedder(model={self.model!r}, dimension={self.dimension}, "
                f"base_url={self.base_url!r})")

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        """Batches of ``max_batch``; an image the service refuses becomes that entry's error.

        Raises:
            AdapterError: a failure of the whole request (throttling, 5xx, timeout, bad key).
        """
        results: list[np.ndarray | Exception | None] = [None] * len(images)
        pending: list[tuple[int, dict[str, str]]] = []
        for i, image in enumerate(images):
            try:
                pending.append((i, {"image": image_reference(prepared(self, image))}))
            except AdapterError as exc:
                results[i] = exc
        for start in range(0, len(pending), self.max_batch):
            request_isolating_refusals(pending[start:start + self.max_batch],
                                       self._request, results)
        return [r if r is not None else AdapterError("not embedded", retriable=True)
                for r in results]

    def embed_fused(self, parts: Sequence[tuple[str, Any, float]]) -> np.ndarray:
        """ONE-PEACE's own fusion (``fuses_inputs``) of a text, an image and an audio file
        (``(kind, input, factor)``): one request, one vector, each input weighted by its
        factor. Audio goes the way DashScope takes local files: uploaded to its storage
        with an upload policy from this connection's base URL, then named ``oss://…``."""
        if not self.fuses_inputs:
            raise NotSupportedError(f"{self.model} embeds each input on its own")
        contents: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="mmdm-audio-") as folder:
            for kind, value, factor in parts:
                if kind == "text":
                    if not str(value).strip():
                        raise AdapterError("cannot embed an empty text", is_input_error=True)
                    item: dict[str, Any] = {"text": _sdk_safe_text(str(value))}
                elif kind == "image":
                    item = {"image": image_reference(prepared(self, value))}
                else:
                    item = {"audio": self._upload_audio(value, folder)}
                contents.append({**item, "factor": factor})
            entry = self._request(contents)[0]
        if isinstance(entry, Exception):
            raise entry
        return entry

    def _upload_audio(self, audio: ImageInput, folder: str) -> str:
        name = os.path.basename(urlsplit(audio.uri).path) or "query"
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in AUDIO_FORMATS:
            raise AdapterError(f"{audio.uri}: {self.model} takes {', '.join(AUDIO_FORMATS)} "
                               "audio", is_input_error=True)
        data = audio.data or b""
        if len(data) > MAX_AUDIO_BYTES:
            raise AdapterError(f"{audio.uri}: {self.model} takes audio up to "
                               f"{MAX_AUDIO_BYTES // (1024 * 1024)} MB", is_input_error=True)
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        service = f"DashScope upload ({self.model})"
        try:
            url, _ = OssUtils.upload(model=self.model, file_path=path, api_key=self._api_key,
                                     base_address=self.base_url, workspace=self.workspace)
        except requests.RequestException as exc:
            raise AdapterError(self._redact(transport_error(service, exc).message),
                               retriable=True) from None
        except DashScopeException as exc:  # the policy request or the upload was refused
            raise AdapterError(self._redact(f"{service}: {shorten(exc)}"),
                               retriable=True) from None
        return str(url)

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        """One request per text: the documented limits count texts per call separately."""
        vectors = []
        for text in texts:
            if not text.strip():
                raise AdapterError("cannot embed an empty text", is_input_error=True)
            entry = self._request([{"text": _sdk_safe_text(text)}])[0]
            if isinstance(entry, Exception):
                raise entry
            vectors.append(entry)
        return vectors

    def _request(self, contents: list[dict[str, str]]) -> list[np.ndarray | Exception]:
        params: dict[str, Any] = {}
        if self.spec.sends_dimension:
            params["dimension"] = self.dimension
        if self.spec.fused and any("text" in item for item in contents):
            params["auto_truncation"] = True  # ONE-PEACE fails texts over 70 characters otherwise
        resp = self._call(dashscope.MultiModalEmbedding.call, "embedding", input=contents,
                          **params)
        used = getattr(resp, "usage", None) or {}
        self.usage.add(Calls=1, Images=sum(1 for item in contents if "image" in item),
                       InputTokens=field(used, "input_tokens"))
        output = resp.output if isinstance(resp.output, dict) else {}
        if self.spec.fused:
            return [self._vector(output.get("embedding"))]
        by_index = {item.get("index"): item.get("embedding")
                    for item in output.get("embeddings") or [] if isinstance(item, dict)}
        return [self._vector(by_index[i]) if i in by_index else
                AdapterError(f"DashScope embedding ({self.model}) returned no vector for "
                             f"item {i}", retriable=True)
                for i in range(len(contents))]

    def _vector(self, values: Sequence[float] | None) -> np.ndarray:
        if not values:
            raise AdapterError(f"DashScope embedding ({self.model}): response has no vector",
                               retriable=True)
        if len(values) != self.dimension:
            raise AdapterError(f"DashScope embedding ({self.model}) returned {len(values)} "
                               f"values, configured for {self.dimension}", is_input_error=True)
        return l2_normalise(values)
