"""Datasets and their versions (PAI's ListDatasets/GetDataset/ListDatasetVersions/...)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from .. import deps
from ..context import ApiContext

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


def _dataset(ctx: ApiContext, dataset_id: str) -> dict[str, Any]:
    store = ctx.store()
    ds = store.get_dataset(dataset_id)
    versions = store.list_versions(ds.dataset_id)
    return {**ds.to_pai(), "LatestVersion": versions[-1].version_name if versions else None}


@router.get("")
def list_datasets(ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    datasets = [_dataset(ctx, ds.dataset_id) for ds in ctx.store().list_datasets()]
    return {"TotalCount": len(datasets), "Datasets": datasets}


@router.get("/{DatasetId}")
def get_dataset(DatasetId: str, ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    return _dataset(ctx, DatasetId)


def _version(ctx: ApiContext, dataset_id: str, name: str) -> dict[str, Any]:
    store = ctx.store()
    return {**store.get_version(dataset_id, name).to_pai(),
            **store.version_stats(dataset_id, name)}


@router.get("/{DatasetId}/versions")
def list_versions(DatasetId: str, ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    versions = [_version(ctx, ds.dataset_id, v.version_name)
                for v in store.list_versions(ds.dataset_id)]
    return {"TotalCount": len(versions), "Versions": versions}


@router.get("/{DatasetId}/versions/{VersionName}")
def get_version(DatasetId: str, VersionName: str,
                ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    ds = ctx.store().get_dataset(DatasetId)
    return _version(ctx, ds.dataset_id, VersionName)


@router.get("/{DatasetId}/versions/{VersionName}/indexsets")
def list_index_sets(DatasetId: str, VersionName: str,
                    ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """The version's semantic index sets, the default (newest) first: model, dimension, table,
    connections, and ``SupportsText`` (whether a text query can search it)."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    store.get_version(ds.dataset_id, VersionName)
    sets = ctx.search().describe_index_sets(ds.dataset_id, VersionName)
    return {"TotalCount": len(sets), "IndexSets": sets}
