"""Model connections: DashScope (Qwen-VL, multimodal embeddings), a PAI-EAS GME service, any
OpenAI-compatible server (vLLM, SGLang, Ollama, LM Studio, DashScope's compatible mode), and a
CLIP checkpoint run in the worker's own process."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook, Connection

from mmdm.adapters.errors import ConfigError
from mmdm.adapters.models import open_embedder, open_tagger
from mmdm.adapters.models.base import Embedder, Tagger

from . import optional_connection

DEFAULT_TAGGING_CONN = "mmdm_dashscope_default"
DEFAULT_EMBEDDING_CONN = "mmdm_embedding_default"


class DashScopeHook(BaseHook):
    """Alibaba Cloud Model Studio (DashScope).

    Fields: password = API key; host = base URL (default ``https://dashscope.aliyuncs.com/api/v1``;
    ``https://dashscope-intl.aliyuncs.com/api/v1`` for Singapore); extra ``workspace``.

    :param dashscope_conn_id: connection id.
    """

    conn_name_attr = "dashscope_conn_id"
    default_conn_name = DEFAULT_TAGGING_CONN
    conn_type = "mmdm_dashscope"
    hook_name = "DashScope (mmdm)"

    def __init__(self, dashscope_conn_id: str = default_conn_name):
        super().__init__()
        self.dashscope_conn_id = dashscope_conn_id

    @staticmethod
    def settings(conn: Connection) -> dict[str, Any]:
        if not conn.password:
            raise ConfigError(f"connection {conn.conn_id!r} has no API key (password)")
        return {"api_key": conn.password, "base_url": conn.host or None,
                "workspace": conn.extra_dejson.get("workspace")}

    def get_tagger(self, model: str = "qwen-vl-max") -> Tagger:
        conn = self.get_connection(self.dashscope_conn_id)
        return open_tagger("dashscope", model=model, **self.settings(conn))

    def get_embedder(self, model: str = "multimodal-embedding-v1",
                     dimension: int | None = None) -> Embedder:
        conn = self.get_connection(self.dashscope_conn_id)
        return open_embedder("dashscope", model=model, dimension=dimension, **self.settings(conn))


class EasEmbeddingHook(BaseHook):
    """A GME embedding service deployed on PAI-EAS.

    Fields: host = the service endpoint (``http://….pai-eas.aliyuncs.com/api/predict/…``);
    password = the EAS token; extras ``model`` and ``dimension`` (by default the model's:
    1536 for GME-2B, 3584 for GME-7B).

    :param eas_conn_id: connection id.
    """

    conn_name_attr = "eas_conn_id"
    default_conn_name = "mmdm_eas_default"
    conn_type = "mmdm_eas"
    hook_name = "PAI-EAS embedding service (mmdm)"

    def __init__(self, eas_conn_id: str = default_conn_name):
        super().__init__()
        self.eas_conn_id = eas_conn_id

    @staticmethod
    def embedder(conn: Connection) -> Embedder:
        extra = conn.extra_dejson
        if not conn.host:
            raise ConfigError(f"connection {conn.conn_id!r} has no endpoint (host)")
        return open_embedder("eas", endpoint=conn.host, token=conn.password,
                             model=extra.get("model", "gme-Qwen2-VL-2B-Instruct"),
                             dimension=extra.get("dimension"))  # None: the model's own size

    def get_embedder(self) -> Embedder:
        return self.embedder(self.get_connection(self.eas_conn_id))


class OpenAICompatibleHook(BaseHook):
    """A model server with an OpenAI-compatible API, through the official ``openai`` client.

    Fields: host = base URL (``http://vllm:8000/v1``); password = API key (may be empty for a
    local server); extras ``model`` (the chat / VLM model), ``embedding_model``, ``dimension``
    (the embedding model's vector size), ``image_input`` (``messages``, ``objects`` or
    ``data-uri``: how the server takes images to embed), ``supports_text`` and ``timeout``.

    :param openai_conn_id: connection id.
    """

    conn_name_attr = "openai_conn_id"
    default_conn_name = "mmdm_openai_default"
    conn_type = "mmdm_openai"
    hook_name = "OpenAI-compatible model server (mmdm)"

    def __init__(self, openai_conn_id: str = default_conn_name):
        super().__init__()
        self.openai_conn_id = openai_conn_id

    @staticmethod
    def settings(conn: Connection) -> dict[str, Any]:
        if not conn.host:
            raise ConfigError(f"connection {conn.conn_id!r} has no base URL (host)")
        base_url = conn.host if "://" in conn.host else f"http://{conn.host}"
        if conn.port and f":{conn.port}" not in base_url:
            base_url = base_url.rstrip("/") + f":{conn.port}"
        return {"base_url": base_url, "api_key": conn.password or None,
                "timeout": conn.extra_dejson.get("timeout")}

    @classmethod
    def tagger(cls, conn: Connection, model: str | None = None) -> Tagger:
        extra = conn.extra_dejson
        return open_tagger("openai", model=model or extra.get("model"), **cls.settings(conn))

    @classmethod
    def embedder(cls, conn: Connection, model: str | None = None,
                 dimension: int | None = None) -> Embedder:
        extra = conn.extra_dejson
        return open_embedder(
            "openai", model=model or extra.get("embedding_model") or extra.get("model"),
            dimension=dimension or extra.get("dimension"), image_input=extra.get("image_input"),
            supports_text=extra.get("supports_text"), **cls.settings(conn))


class ClipHook(BaseHook):
    """A CLIP checkpoint run in the worker's own process with Hugging Face ``transformers``
    (``pip install 'mmdm[clip]'``): image and text embeddings, no service and no key.

    Fields: extras ``model`` (a hub name such as ``openai/clip-vit-base-patch32``, or a folder
    holding a saved checkpoint; with ``HF_HUB_OFFLINE=1`` nothing is downloaded), ``device``
    (``cpu`` by default, or ``cuda``, ``cuda:1``, ...) and ``batch_size`` (images per forward
    pass, default 16).

    :param clip_conn_id: connection id.
    """

    conn_name_attr = "clip_conn_id"
    default_conn_name = "mmdm_clip_default"
    conn_type = "mmdm_clip"
    hook_name = "CLIP model, in process (mmdm)"

    def __init__(self, clip_conn_id: str = default_conn_name):
        super().__init__()
        self.clip_conn_id = clip_conn_id

    @staticmethod
    def embedder(conn: Connection, model: str | None = None) -> Embedder:
        extra = conn.extra_dejson
        return open_embedder("clip", model=model or extra.get("model"),
                             device=extra.get("device"), batch_size=extra.get("batch_size"))

    def get_embedder(self, model: str | None = None) -> Embedder:
        return self.embedder(self.get_connection(self.clip_conn_id), model)


def embedder_for(conn_id: str | None = DEFAULT_EMBEDDING_CONN, model: str | None = None,
                 dimension: int | None = None) -> Embedder:
    """The embedder a DashScope, EAS, OpenAI-compatible or CLIP connection names; the offline
    local model when there is none (``None``, ``"local"``, or the default id undefined). A CLIP
    model's dimension is its checkpoint's."""
    conn = optional_connection(conn_id, DEFAULT_EMBEDDING_CONN)
    if conn is None:
        return open_embedder("local", dimension=dimension)
    if conn.conn_type == DashScopeHook.conn_type:
        return open_embedder("dashscope", model=model or "multimodal-embedding-v1",
                             dimension=dimension, **DashScopeHook.settings(conn))
    if conn.conn_type == EasEmbeddingHook.conn_type:
        return EasEmbeddingHook.embedder(conn)
    if conn.conn_type == OpenAICompatibleHook.conn_type:
        return OpenAICompatibleHook.embedder(conn, model, dimension)
    if conn.conn_type == ClipHook.conn_type:
        return ClipHook.embedder(conn, model)
    raise ConfigError(f"connection {conn_id!r} ({conn.conn_type}) is not an embedding service")


def tagger_for(conn_id: str | None = DEFAULT_TAGGING_CONN, model: str | None = None) -> Tagger:
    """The VLM of a DashScope or OpenAI-compatible connection; the offline local pixel tagger
    when there is none."""
    conn = optional_connection(conn_id, DEFAULT_TAGGING_CONN)
    if conn is None:
        return open_tagger("local")
    if conn.conn_type == OpenAICompatibleHook.conn_type:
        return OpenAICompatibleHook.tagger(conn, model)
    if conn.conn_type != DashScopeHook.conn_type:
        raise ConfigError(f"connection {conn_id!r} ({conn.conn_type}) is not a DashScope or "
                          "OpenAI-compatible one")
    return open_tagger("dashscope", model=model or "qwen-vl-max", **DashScopeHook.settings(conn))
