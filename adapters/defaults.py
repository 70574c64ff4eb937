"""The embedded defaults without Airflow: the offline local model and the workspace's vector
store. What searches and jobs run with in the standalone server and the ``mmdm`` command;
inside Airflow, connections take their place (``mmdm.airflow_plugin.hooks.jobs``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigError
from .index_sets import IndexSet
from .jobs.dispatch import JobResources
from .metadata import MetadataStore
from .models import open_embedder, open_tagger
from .models.base import Embedder, Tagger
from .search import SearchService
from .storage import OssConfig
from .vectors.base import VectorStore

LOCAL = (None, "", "local")


def embedded_search(store: MetadataStore, workspace: Path) -> SearchService:
    """Vector queries search each version's index sets with the offline model (the only one
    that can embed a query without connections) in the workspace's default vector store."""
    from .vectors.default import default_vector_store

    def open_index(index: IndexSet) -> tuple[Embedder, VectorStore]:
        embedder = open_embedder("local", dimension=index.dimension)
        if embedder.model != index.embedding_model:
            raise ConfigError(f"index set {index.index_set_id!r} was built with "
                              f"{index.embedding_model!r}; without connections queries are "
                              f"embedded with the offline model only ({embedder.model!r})")
        return embedder, default_vector_store(store, workspace, index.table, index.dimension)

    return SearchService(store, index_opener=open_index)


def embedded_resources(workspace: Path, *, oss_config: OssConfig | None = None,
                       export_roots: Sequence[str] = (),
                       default_export_dir: str | None = None) -> JobResources:
    """Jobs on the offline model and the workspace's vector store; a JobSpec naming a
    connection is refused with the reason."""
    from .vectors.default import default_vector_store

    def no_connection(conn: str | None, what: str) -> None:
        if conn not in LOCAL:
            raise ConfigError(f"there is no {what} connection {conn!r} without Airflow: jobs "
                              "run the offline local model and the workspace's vector store "
                              "(leave the connection out, or run the job in Airflow)")

    def tagger(conn: str | None, model: str | None) -> Tagger:
        no_connection(conn, "tagging")
        return open_tagger("local")

    def embedder(conn: str | None, model: str | None) -> Embedder:
        no_connection(conn, "embedding")
        return open_embedder("local")

    def vectors(conn: str | None, table: str, dimension: int,
                store: MetadataStore) -> VectorStore:
        no_connection(conn, "vector database")
        return default_vector_store(store, workspace, table, dimension)

    return JobResources(
        tagger=tagger, embedder=embedder, vector_store=vectors,
        search=lambda store: embedded_search(store, workspace), oss_config=oss_config,
        export_roots=list(export_roots),
        default_export_dir=default_export_dir or (workspace / "exports").as_uri() + "/")
