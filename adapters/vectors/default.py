"""The vector store a workspace uses when no connection names one."""

from __future__ import annotations

from pathlib import Path

from ..metadata import MetadataStore
from .base import VectorStore


def has_pgvector(store: MetadataStore) -> bool:
    """Whether the store's database can hold vectors (PostgreSQL with pgvector installed)."""
    return store.dialect == "postgres" and store.fetchone(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'") is not None


def default_vector_store(store: MetadataStore, workspace: Path, table: str,
                         dimension: int) -> VectorStore:
    """pgvector beside the metadata when its PostgreSQL has the extension (the embedded default
    does); Milvus Lite in the workspace otherwise (SQLite metadata: one process at a time)."""
    if has_pgvector(store):
        from .pgvector import PgVectorStore

        return PgVectorStore(store, table, dimension)
    from .milvus import MilvusVectorStore

    workspace.mkdir(parents=True, exist_ok=True)
    return MilvusVectorStore(str(workspace / "milvus.db"), table, dimension)
