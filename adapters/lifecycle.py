"""Deleting a version or a dataset with everything that hangs off it, vectors included.

Vectors live outside the metadata store (pgvector tables, Milvus, Elasticsearch): they are
removed first, through the search service's index opener, or a later version that takes the
same name would find them. Both refuse while a job is live on what they delete.
"""

from __future__ import annotations

from .index_sets import index_sets
from .metadata import MetadataStore
from .search import SearchService


def _drop_vectors(store: MetadataStore, search: SearchService, dataset_id: str,
                  version: str) -> None:
    for index in index_sets(store, dataset_id, version):
        _, _, vectors = search.open_index(dataset_id, version, index.index_set_id)
        vectors.delete(index.index_set_id, vectors.file_meta_ids(index.index_set_id))


def delete_version(store: MetadataStore, search: SearchService, dataset_id: str,
                   version: str) -> None:
    ds = store.get_dataset(dataset_id)
    store.get_version(ds.dataset_id, version)
    store.refuse_live_jobs(ds.dataset_id, version)
    _drop_vectors(store, search, ds.dataset_id, version)
    store.delete_version(ds.dataset_id, version)


def delete_dataset(store: MetadataStore, search: SearchService, dataset_id: str) -> None:
    """The dataset's versions, metas, jobs, job configs and vectors; its files stay."""
    ds = store.get_dataset(dataset_id)
    store.refuse_live_jobs(ds.dataset_id, None)
    for v in store.list_versions(ds.dataset_id):
        _drop_vectors(store, search, ds.dataset_id, v.version_name)
    store.delete_dataset(ds.dataset_id)
