"""Datasets and their versions: PAI's Create/Get/List/Update/Delete Dataset and DatasetVersion.

Shapes follow PAI's ``Dataset`` and ``DatasetVersion`` structs so PAI's SDK maps every field.
A dataset's ``Edition`` says what its versions are: ``LOGICAL`` versions are fed by
FileMetaImport, the others are scanned from their ``Uri`` by FileMetaBuild. A ``Uri`` must lie
under one of the server's data roots: registering a folder is what lets the server read it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mmdm.adapters.lifecycle import delete_dataset, delete_version
from mmdm.adapters.metadata import Dataset, DatasetVersion, MetadataStore
from mmdm.adapters.storage.roots import within_any

from .. import deps
from ..context import ApiContext
from ..errors import bad_parameter

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

EDITIONS = ("BASIC", "ADVANCED", "LOGICAL")


def _source(uri: str | None) -> str:
    return "OSS" if (uri or "").startswith("oss://") else "LOCAL"


def version_shape(store: MetadataStore, v: DatasetVersion) -> dict[str, Any]:
    """PAI's DatasetVersion, plus mmdm's ``VersionKind`` (STORAGE or LOGICAL)."""
    return {**v.to_pai(), "Property": "DIRECTORY", "DataSourceType": _source(v.uri),
            "SourceType": "USER", "VersionKind": v.source_type, "Labels": [],
            "Options": "{}", **store.version_stats(v.dataset_id, v.version_name)}


def dataset_shape(store: MetadataStore, ds: Dataset) -> dict[str, Any]:
    versions = store.list_versions(ds.dataset_id)
    return {**ds.to_pai(), "Property": "DIRECTORY", "DataSourceType": _source(ds.uri),
            "DataType": "PIC", "SourceType": "USER", "Accessibility": "PRIVATE",
            "Labels": [], "Options": "{}",
            "LatestVersion": version_shape(store, versions[-1]) if versions else None}


def _check_uri(ctx: ApiContext, uri: str) -> str:
    if not within_any(uri, ctx.data_roots()):
        raise bad_parameter("Uri", f"{uri!r} is not under a data root of this server "
                                   f"({', '.join(ctx.data_roots())})")
    return uri


@router.get("")
def list_datasets(Name: str | None = None, DatasetIds: str | None = None, PageNumber: int = 1,
                  PageSize: int = 20, Order: str = "ASC", WorkspaceId: str | None = None,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """ListDatasets: ``Name`` matches a part of the name, ``DatasetIds`` is comma-separated."""
    store = ctx.store()
    found = store.list_datasets()
    if Name:
        found = [ds for ds in found if Name.casefold() in ds.name.casefold()]
    if DatasetIds:
        wanted = {i.strip() for i in DatasetIds.split(",")}
        found = [ds for ds in found if ds.dataset_id in wanted]
    if Order.upper() == "DESC":
        found.reverse()
    return {"TotalCount": len(found), "PageNumber": PageNumber, "PageSize": PageSize,
            "Datasets": [dataset_shape(store, ds)
                         for ds in deps.page_of(found, PageNumber, PageSize)]}


@router.get("/{DatasetId}")
def get_dataset(DatasetId: str, ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    store = ctx.store()
    return dataset_shape(store, store.get_dataset(DatasetId))


class CreateDatasetRequest(BaseModel):
    Name: str = Field(min_length=1, max_length=127)
    Uri: str
    Property: str = "DIRECTORY"
    DataSourceType: str | None = None
    DataType: str | None = None
    Edition: str = "ADVANCED"
    Description: str | None = None
    VersionDescription: str | None = None
    WorkspaceId: str | None = None


@router.post("")
def create_dataset(body: CreateDatasetRequest,
                   ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """CreateDataset with its first version ``v1``. Files are only registered: FileMetaBuild
    (CreateDatasetJob) reads them."""
    if body.Property != "DIRECTORY":
        raise bad_parameter("Property", "mmdm datasets are folders: Property DIRECTORY")
    if body.Edition not in EDITIONS:
        raise bad_parameter("Edition", f"Edition must be one of {', '.join(EDITIONS)}")
    store = ctx.store()
    ds = store.create_dataset(body.Name, _check_uri(ctx, body.Uri), edition=body.Edition,
                              description=body.Description)
    _new_version(store, ds, None, body.VersionDescription)
    return {"DatasetId": ds.dataset_id}


def _new_version(store: MetadataStore, ds: Dataset, uri: str | None,
                 description: str | None) -> DatasetVersion:
    if ds.edition == "LOGICAL":
        return store.create_version(ds.dataset_id, uri=uri or ds.uri, source_type="LOGICAL",
                                    description=description)
    return store.create_version(ds.dataset_id, uri=uri, description=description)


class DatasetChange(BaseModel):
    Name: str | None = Field(None, min_length=1, max_length=127)
    Description: str | None = None


@router.put("/{DatasetId}")
def update_dataset(DatasetId: str, body: DatasetChange,
                   ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """UpdateDataset: the name and the description."""
    ctx.store().update_dataset(DatasetId, name=body.Name, description=body.Description)
    return {}


@router.delete("/{DatasetId}")
def delete_dataset_route(DatasetId: str,
                         ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """DeleteDataset: its versions, metas, jobs and vectors (the files stay where they are)."""
    delete_dataset(ctx.store(), ctx.search(), DatasetId)
    return {}


@router.get("/{DatasetId}/versions")
def list_versions(DatasetId: str, PageNumber: int = 1, PageSize: int = 20, Order: str = "ASC",
                  SortBy: str | None = None,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """ListDatasetVersions as PAI's ``DatasetVersions``, oldest first by default."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    versions = store.list_versions(ds.dataset_id)
    if Order.upper() == "DESC":
        versions.reverse()
    return {"TotalCount": len(versions), "PageNumber": PageNumber, "PageSize": PageSize,
            "DatasetVersions": [version_shape(store, v)
                                for v in deps.page_of(versions, PageNumber, PageSize)]}


class CreateVersionRequest(BaseModel):
    Uri: str | None = None
    Property: str = "DIRECTORY"
    DataSourceType: str | None = None
    SourceType: str | None = None
    Description: str | None = None
    Options: str | None = None


@router.post("/{DatasetId}/versions")
def create_version(DatasetId: str, body: CreateVersionRequest,
                   ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """CreateDatasetVersion: the next ``vN``, over ``Uri`` (default: the dataset's)."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    uri = _check_uri(ctx, body.Uri) if body.Uri else None
    return {"VersionName": _new_version(store, ds, uri, body.Description).version_name}


@router.get("/{DatasetId}/versions/{VersionName}")
def get_version(DatasetId: str, VersionName: str,
                ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    return version_shape(store, store.get_version(ds.dataset_id, VersionName))


class VersionChange(BaseModel):
    Description: str | None = None
    Options: str | None = None


@router.put("/{DatasetId}/versions/{VersionName}")
def update_version(DatasetId: str, VersionName: str, body: VersionChange,
                   ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """UpdateDatasetVersion: the description (counts and sizes are the store's own)."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    store.update_version(ds.dataset_id, VersionName, description=body.Description)
    return {}


@router.delete("/{DatasetId}/versions/{VersionName}")
def delete_version_route(DatasetId: str, VersionName: str,
                   ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    delete_version(ctx.store(), ctx.search(), DatasetId, VersionName)
    return {}


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

