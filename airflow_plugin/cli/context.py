"""What every command opens: the workspace, its store, a search service, job resources."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mmdm.adapters.defaults import LOCAL, embedded_resources, embedded_search
from mmdm.adapters.errors import NotFoundError
from mmdm.adapters.index_sets import IndexSet
from mmdm.adapters.jobs.dispatch import JobResources
from mmdm.adapters.metadata import Dataset, MetadataStore, open_store
from mmdm.adapters.search import SearchService
from mmdm.adapters.models.base import Embedder
from mmdm.adapters.storage import OssConfig
from mmdm.adapters.vectors.base import VectorStore

DEFAULT_WORKSPACE = "mmdm-workspace"


def workspace(args: argparse.Namespace) -> Path:
    return Path(args.workspace or os.environ.get("MMDM_WORKSPACE", DEFAULT_WORKSPACE)).resolve()


def store(args: argparse.Namespace) -> MetadataStore:
    """The store of ``--metadata``, ``MMDM_METADATA_URL``, or the workspace's embedded one."""
    if getattr(args, "_store", None) is None:
        from mmdm.adapters.metadata.embedded import workspace_store_url

        url = args.metadata or os.environ.get("MMDM_METADATA_URL")
        args._store = open_store(url or workspace_store_url(workspace(args)))
    return args._store


def search(args: argparse.Namespace) -> SearchService:
    """Index sets a job built on the offline model are searched without Airflow; one built
    with ``--connection`` through Airflow's connections, as its job ran (see ``resources``)."""
    embedded = embedded_search(store(args), workspace(args)).index_opener
    assert embedded is not None

    def open_index(index: IndexSet) -> tuple[Embedder, VectorStore]:
        if index.embedding_connection in LOCAL and index.vector_connection in LOCAL:
            return embedded(index)
        from mmdm.airflow_plugin.hooks.jobs import search_service  # imports Airflow

        through_airflow = search_service(store(args)).index_opener
        assert through_airflow is not None
        return through_airflow(index)

    return SearchService(store(args), index_opener=open_index, oss_config=OssConfig.from_env())


def dataset_version(args: argparse.Namespace) -> tuple[Dataset, str]:
    """``args.dataset`` (id or name) and ``args.version``, or its newest version."""
    s = store(args)
    ds = s.get_dataset(args.dataset)
    if getattr(args, "version", None):
        return ds, s.get_version(ds.dataset_id, args.version).version_name
    versions = s.list_versions(ds.dataset_id)
    if not versions:
        raise NotFoundError(f"dataset {ds.name!r} has no versions")
    return ds, versions[-1].version_name


def resources(args: argparse.Namespace, *roots: str) -> JobResources:
    """The offline model and the workspace's vector store; with ``--connection`` (an Airflow
    connection id) the models and vector stores of Airflow's connections, as in the DAGs.
    ``roots``: where an export may write and an import may read (the command names them)."""
    if any(getattr(args, name, None) not in (None, "", "local")
           for name in ("connection", "vector_connection", "zero_shot_connection")):
        from mmdm.airflow_plugin.hooks.jobs import job_resources  # imports Airflow

        return job_resources(export_roots=roots)
    return embedded_resources(workspace(args), oss_config=OssConfig.from_env(),
                              export_roots=roots)
