"""What dataset jobs and searches run with inside Airflow: the connections the DAGs use.

Shared by the API's context (searches, job requests it checks) and the job DAG's task (the job
it runs), so a job request behaves the same whichever process runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmdm.adapters.index_sets import IndexSet
from mmdm.adapters.jobs.dispatch import JobResources
from mmdm.adapters.metadata import MetadataStore
from mmdm.adapters.models.base import Embedder
from mmdm.adapters.search import SearchService
from mmdm.adapters.storage import OssConfig
from mmdm.adapters.vectors.base import VectorStore

from .metadata import workspace_dir
from .models import DEFAULT_EMBEDDING_CONN, DEFAULT_TAGGING_CONN, embedder_for, tagger_for
from .oss import OssHook
from .vectors import DEFAULT_VECTOR_CONN, vector_store_for


def search_service(store: MetadataStore) -> SearchService:
    def open_index(index: IndexSet) -> tuple[Embedder, VectorStore]:
        # The connections the index job ran with (their default ids when it named none).
        embedder = embedder_for(index.embedding_connection or DEFAULT_EMBEDDING_CONN,
                                index.embedding_model, index.dimension or None)
        return embedder, vector_store_for(index.vector_connection or DEFAULT_VECTOR_CONN,
                                          index.table, embedder.dimension, store)

    return SearchService(store, index_opener=open_index, oss_config=OssHook().get_config())


def job_resources(oss_config: OssConfig | None = None, export_roots: Sequence[str] = (),
                  default_export_dir: str | None = None) -> JobResources:
    """A JobSpec without a connection id means the default connection, as in the DAGs."""
    return JobResources(
        tagger=lambda conn, model: tagger_for(conn or DEFAULT_TAGGING_CONN, model),
        embedder=lambda conn, model: embedder_for(conn or DEFAULT_EMBEDDING_CONN, model),
        vector_store=lambda conn, table, dim, store: vector_store_for(
            conn or DEFAULT_VECTOR_CONN, table, dim, store),
        search=search_service,
        oss_config=oss_config if oss_config is not None else OssHook().get_config(),
        export_roots=list(export_roots),
        default_export_dir=default_export_dir or (workspace_dir() / "exports").as_uri() + "/")
