"""The API's context inside Airflow: the same connections (and embedded fallbacks) the DAGs use."""

from __future__ import annotations

from mmdm.adapters.metadata import MetadataStore
from mmdm.adapters.search import SearchService

from ..hooks.metadata import MetadataStoreHook, workspace_dir
from ..hooks.models import embedder_for
from ..hooks.oss import OssHook
from ..hooks.vectors import DEFAULT_VECTOR_CONN, vector_store_for
from .context import VECTOR_TABLE, ApiContext


def _store() -> MetadataStore:
    return MetadataStoreHook().get_store()


def _search(store: MetadataStore) -> SearchService:
    embedder = embedder_for()
    vectors = vector_store_for(DEFAULT_VECTOR_CONN, VECTOR_TABLE, embedder.dimension, store)
    return SearchService(store, vector_store=vectors, embedder=embedder,
                         oss_config=OssHook().get_config())


def airflow_context() -> ApiContext:
    return ApiContext(_store, search_factory=_search, workspace=workspace_dir,
                      oss_config=lambda: OssHook().get_config())
