"""Provider metadata: Airflow lists mmdm's connection types, forms and hooks from here."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any


def _version() -> str:
    try:
        return version("mmdm")
    except PackageNotFoundError:
        return "0.0.0"


def _field(label: str, kind: str | list[str] = "string", **schema: Any) -> dict[str, Any]:
    return {"label": label, "schema": {"type": kind, **schema}}


def _form(hidden: list[str], relabel: dict[str, str], placeholders: dict[str, str]
          ) -> dict[str, Any]:
    return {"hidden-fields": hidden, "relabeling": relabel, "placeholders": placeholders}


CONNECTION_TYPES = [
    {
        "connection-type": "mmdm_dashscope",
        "hook-class-name": "mmdm.airflow_plugin.hooks.models.DashScopeHook",
        "hook-name": "DashScope (mmdm)",
        "conn-fields": {"workspace": _field("Workspace", ["string", "null"])},
        "ui-field-behaviour": _form(
            ["schema", "port", "login", "extra"],
            {"host": "Base URL", "password": "API key"},
            {"host": "https://dashscope.aliyuncs.com/api/v1", "password": "sk-…"}),
    },
    {
        "connection-type": "mmdm_openai",
        "hook-class-name": "mmdm.airflow_plugin.hooks.models.OpenAICompatibleHook",
        "hook-name": "OpenAI-compatible model server (mmdm)",
        "conn-fields": {
            "model": _field("Chat (VLM) model", ["string", "null"]),
            "embedding_model": _field("Embedding model", ["string", "null"]),
            "dimension": _field("Embedding dimension", ["integer", "null"], minimum=1),
            "image_input": _field("How images are embedded", ["string", "null"],
                                  enum=["messages", "objects", "data-uri", None]),
            "supports_text": _field("The embedding model embeds text", ["boolean", "null"]),
        },
        "ui-field-behaviour": _form(
            ["schema", "login", "extra"],
            {"host": "Base URL", "password": "API key (empty for a local server)"},
            {"host": "http://vllm:8000/v1"}),
    },
    {
        "connection-type": "mmdm_clip",
        "hook-class-name": "mmdm.airflow_plugin.hooks.models.ClipHook",
        "hook-name": "CLIP model, in process (mmdm)",
        "conn-fields": {
            "model": _field("Model (hub name or checkpoint folder)",
                            default="openai/clip-vit-base-patch32"),
            "device": _field("Device", default="cpu"),
            "batch_size": _field("Images per forward pass", ["integer", "null"], minimum=1),
        },
        "ui-field-behaviour": _form(
            ["host", "schema", "port", "login", "password", "extra"], {}, {}),
    },
    {
        "connection-type": "mmdm_eas",
        "hook-class-name": "mmdm.airflow_plugin.hooks.models.EasEmbeddingHook",
        "hook-name": "PAI-EAS embedding service (mmdm)",
        "conn-fields": {
            "model": _field("Model", default="gme-Qwen2-VL-2B-Instruct"),
            "dimension": _field("Vector dimension (empty: the model's)", ["integer", "null"],
                                minimum=1),
        },
        "ui-field-behaviour": _form(
            ["schema", "port", "login", "extra"],
            {"host": "Service endpoint", "password": "EAS token"},
            {"host": "http://….pai-eas.aliyuncs.com/api/predict/gme"}),
    },
    {
        "connection-type": "mmdm_milvus",
        "hook-class-name": "mmdm.airflow_plugin.hooks.vectors.MilvusHook",
        "hook-name": "Milvus (mmdm)",
        "conn-fields": {
            "index_type": _field("Index type", default="AUTOINDEX",
                                 enum=["AUTOINDEX", "HNSW", "FLAT", "IVF_FLAT"]),
        },
        "ui-field-behaviour": _form(
            ["login", "extra"],
            {"host": "URI (http://host:19530, or a file path for Milvus Lite)",
             "password": "Token", "schema": "Database"},
            {"host": "http://milvus:19530", "password": "root:<password>"}),
    },
    {
        "connection-type": "mmdm_oss",
        "hook-class-name": "mmdm.airflow_plugin.hooks.oss.OssHook",
        "hook-name": "Alibaba OSS (mmdm)",
        "conn-fields": {
            "region": _field("Region (V4 signing)", ["string", "null"]),
            "security_token": _field("STS security token", ["string", "null"], format="password"),
        },
        "ui-field-behaviour": _form(
            ["schema", "port", "extra"],
            {"host": "Endpoint", "login": "AccessKey ID", "password": "AccessKey secret"},
            {"host": "oss-cn-hangzhou.aliyuncs.com"}),
    },
    {
        "connection-type": "mmdm_metadata",
        "hook-class-name": "mmdm.airflow_plugin.hooks.metadata.MetadataStoreHook",
        "hook-name": "mmdm metadata store (SQLite)",
        "conn-fields": {},
        "ui-field-behaviour": _form(
            ["schema", "port", "login", "password", "extra"],
            {"host": "SQLite file path"},
            {"host": "/data/mmdm/metadata.db"}),
    },
]


INTEGRATION = "mmdm"
_PKG = "mmdm.airflow_plugin"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "mmdm",
        "name": "mmdm",
        "description": "Multimodal data management for image datasets: file metadata, smart "
                       "tagging, semantic indexing, DSL search and export, PAI compatible.",
        "versions": [_version()],
        "integrations": [{
            "integration-name": INTEGRATION,
            "external-doc-url": "https://pypi.org/project/mmdm/",
            "tags": ["software"],
        }],
        "hooks": [{"integration-name": INTEGRATION,
                   "python-modules": [f"{_PKG}.hooks.{m}"
                                      for m in ("metadata", "models", "oss", "vectors")]}],
        "operators": [{"integration-name": INTEGRATION,
                       "python-modules": [f"{_PKG}.operators.{m}" for m in
                                          ("build", "tagging", "indexing", "export",
                                           "evaluate")]}],
        "connection-types": CONNECTION_TYPES,
    }
