"""The API's context inside Airflow: the same connections (and embedded fallbacks) the DAGs use."""

from __future__ import annotations

from mmdm.adapters.index_sets import IndexSet
from mmdm.adapters.jobs.dispatch import JobResources
from mmdm.adapters.metadata import MetadataStore, open_store
from mmdm.adapters.models.base import Embedder
from mmdm.adapters.search import SearchService
from mmdm.adapters.vectors.base import VectorStore

from ..hooks.metadata import MetadataStoreHook, workspace_dir
from ..hooks.models import DEFAULT_EMBEDDING_CONN, DEFAULT_TAGGING_CONN, embedder_for, tagger_for
from ..hooks.oss import OssHook
from ..hooks.vectors import DEFAULT_VECTOR_CONN, vector_store_for
from .context import ApiContext, once


def _search(store: MetadataStore) -> SearchService:
    def open_index(index: IndexSet) -> tuple[Embedder, VectorStore]:
        # The connections the index job ran with (their default ids when it named none).
        embedder = embedder_for(index.embedding_connection or DEFAULT_EMBEDDING_CONN,
                                index.embedding_model, index.dimension or None)
        return embedder, vector_store_for(index.vector_connection or DEFAULT_VECTOR_CONN,
                                          index.table, embedder.dimension, store)

    return SearchService(store, index_opener=open_index, oss_config=OssHook().get_config())


def _resources(ctx: ApiContext) -> JobResources:
    """Jobs started through the API read the same connections the DAG tasks do."""
    return JobResources(
        # A JobSpec without a connection id means the default connection, as in the DAGs.
        tagger=lambda conn, model: tagger_for(conn or DEFAULT_TAGGING_CONN, model),
        embedder=lambda conn, model: embedder_for(conn or DEFAULT_EMBEDDING_CONN, model),
        vector_store=lambda conn, table, dim, store: vector_store_for(
            conn or DEFAULT_VECTOR_CONN, table, dim, store),
        search=_search, oss_config=ctx.oss_config(),
        export_roots=ctx.export_roots(), default_export_dir=ctx.default_export_dir())


def airflow_context() -> ApiContext:
    url = once(lambda: MetadataStoreHook().store_url())
    return ApiContext(lambda: open_store(url()), search_factory=_search,
                      workspace=workspace_dir, oss_config=lambda: OssHook().get_config(),
                      job_resources=_resources)
