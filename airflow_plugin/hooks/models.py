"""Model connections: DashScope (Qwen-VL, multimodal embeddings) and a PAI-EAS GME service."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from adapters.errors import ConfigError
from adapters.models import open_embedder, open_tagger
from adapters.models.base import Embedder, Tagger

LOCAL_MODEL = "local"  # the offline model: no connection, no key, no download


class DashScopeHook(BaseHook):
    """Alibaba Cloud Model Studio (DashScope).

    Fields: password = API key; host = base URL (default ``https://dashscope.aliyuncs.com/api/v1``;
    ``https://dashscope-intl.aliyuncs.com/api/v1`` for Singapore); extra ``workspace``.

    :param dashscope_conn_id: connection id.
    """

    conn_name_attr = "dashscope_conn_id"
    default_conn_name = "mmdm_dashscope_default"
    conn_type = "mmdm_dashscope"
    hook_name = "DashScope (mmdm)"

    def __init__(self, dashscope_conn_id: str = default_conn_name):
        super().__init__()
        self.dashscope_conn_id = dashscope_conn_id

    def _settings(self) -> dict[str, Any]:
        conn = self.get_connection(self.dashscope_conn_id)
        if not conn.password:
            raise ConfigError(f"connection {self.dashscope_conn_id!r} has no API key (password)")
        return {"api_key": conn.password, "base_url": conn.host or None,
                "workspace": conn.extra_dejson.get("workspace")}

    def get_tagger(self, model: str = "qwen-vl-max") -> Tagger:
        return open_tagger("dashscope", model=model, **self._settings())

    def get_embedder(self, model: str = "multimodal-embedding-v1",
                     dimension: int | None = None) -> Embedder:
        return open_embedder("dashscope", model=model, dimension=dimension, **self._settings())


class EasEmbeddingHook(BaseHook):
    """A GME embedding service deployed on PAI-EAS.

    Fields: host = the service endpoint (``http://….pai-eas.aliyuncs.com/api/predict/…``);
    password = the EAS token; extras ``model`` and ``dimension`` (1536 for GME-2B).

    :param eas_conn_id: connection id.
    """

    conn_name_attr = "eas_conn_id"
    default_conn_name = "mmdm_eas_default"
    conn_type = "mmdm_eas"
    hook_name = "PAI-EAS embedding service (mmdm)"

    def __init__(self, eas_conn_id: str = default_conn_name):
        super().__init__()
        self.eas_conn_id = eas_conn_id

    def get_embedder(self) -> Embedder:
        conn = self.get_connection(self.eas_conn_id)
        extra = conn.extra_dejson
        if not conn.host:
            raise ConfigError(f"connection {self.eas_conn_id!r} has no endpoint (host)")
        return open_embedder("eas", endpoint=conn.host, token=conn.password,
                             model=extra.get("model", "gme-Qwen2-VL-2B-Instruct"),
                             dimension=int(extra.get("dimension", 1536)))


def embedder_for(conn_id: str | None, model: str | None = None,
                 dimension: int | None = None) -> Embedder:
    """The embedder a connection names: DashScope or EAS; ``None`` is the offline local model."""
    if conn_id is None or conn_id == LOCAL_MODEL:
        return open_embedder("local")
    conn_type = BaseHook.get_connection(conn_id).conn_type
    if conn_type == DashScopeHook.conn_type:
        return DashScopeHook(conn_id).get_embedder(model or "multimodal-embedding-v1", dimension)
    if conn_type == EasEmbeddingHook.conn_type:
        return EasEmbeddingHook(conn_id).get_embedder()
    raise ConfigError(f"connection {conn_id!r} ({conn_type}) is not an embedding connection")


def tagger_for(conn_id: str | None, model: str | None = None) -> Tagger:
    """The VLM a connection names; ``None`` is the offline local pixel tagger."""
    if conn_id is None or conn_id == LOCAL_MODEL:
        return open_tagger("local")
    return DashScopeHook(conn_id).get_tagger(model or "qwen-vl-max")
