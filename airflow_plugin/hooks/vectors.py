"""Vector-database connections: Milvus (server or Milvus Lite) and Elasticsearch."""

from __future__ import annotations

from airflow.sdk import BaseHook

from mmdm.adapters.errors import ConfigError
from mmdm.adapters.metadata import MetadataStore
from mmdm.adapters.vectors.base import VectorStore
from mmdm.adapters.vectors.default import default_vector_store

from . import optional_connection
from .metadata import workspace_dir


class MilvusHook(BaseHook):
    """Milvus: host = ``http(s)://host:19530`` for a server, or a local file path for Milvus
    Lite; password = token (``root:<password>``); schema = database.

    :param milvus_conn_id: connection id; Milvus Lite in the mmdm workspace without one.
    """

    conn_name_attr = "milvus_conn_id"
    default_conn_name = "mmdm_milvus_default"
    conn_type = "mmdm_milvus"
    hook_name = "Milvus (mmdm)"

    def __init__(self, milvus_conn_id: str | None = default_conn_name):
        super().__init__()
        self.milvus_conn_id = milvus_conn_id

    def get_vector_store(self, table: str, dimension: int) -> VectorStore:
        from mmdm.adapters.vectors.milvus import MilvusVectorStore

        conn = optional_connection(self.milvus_conn_id, self.default_conn_name)
        if conn is None:
            return MilvusVectorStore(str(workspace_dir() / "milvus.db"), table, dimension)
        if not conn.host:
            raise ConfigError(f"connection {conn.conn_id!r} has no uri (host)")
        uri = conn.host if "://" in conn.host or conn.port is None else f"{conn.host}:{conn.port}"
        return MilvusVectorStore(uri, table, dimension, token=conn.password or None,
                                 db_name=conn.schema or None,
                                 index_type=conn.extra_dejson.get("index_type", "AUTOINDEX"))


DEFAULT_VECTOR_CONN = "mmdm_vectors_default"


def vector_store_for(conn_id: str | None, table: str, dimension: int,
                     store: MetadataStore) -> VectorStore:
    """The store a connection names: ``mmdm_milvus`` or the Elasticsearch provider's
    ``elasticsearch`` type. Without one: pgvector in the metadata's PostgreSQL when it has the
    extension (the embedded default), else Milvus Lite in the workspace."""
    conn = optional_connection(conn_id, DEFAULT_VECTOR_CONN)
    if conn is None:
        return default_vector_store(store, workspace_dir(), table, dimension)
    conn_type = conn.conn_type
    if conn_type == MilvusHook.conn_type:
        return MilvusHook(conn_id).get_vector_store(table, dimension)
    if conn_type == "elasticsearch":
        from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchSQLHook

        from mmdm.adapters.vectors.elasticsearch import ElasticsearchVectorStore

        client = ElasticsearchSQLHook(elasticsearch_conn_id=conn_id).get_conn().es
        return ElasticsearchVectorStore(client, index=table, dimension=dimension)
    raise ConfigError(f"connection {conn_id!r} ({conn_type}) is not a vector database")
