"""PAI's DatasetJobConfig: per-dataset (or per-version) defaults of tagging and index jobs.

``Config`` is a JSON string of JobSpec keys (PAI's ``defaultModelId`` and ``defaultModelVersion``
fill ``modelId`` and ``modelVersion``); CreateDatasetJob fills what a request leaves out from
them. Note PAI's trailing slash on the list path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from .. import deps
from ..context import ApiContext
from ..errors import ApiError

router = APIRouter(prefix="/api/v1/datasets/{DatasetId}/datasetjobconfigs",
                   tags=["dataset job configs"])


def _config(ctx: ApiContext, dataset_id: str, config_id: str):  # type: ignore[no-untyped-def]
    store = ctx.store()
    config = store.get_job_config(config_id)
    if config.dataset_id != store.get_dataset(dataset_id).dataset_id:
        raise ApiError(404, "NotFound", f"dataset {dataset_id!r} has no job config "
                                        f"{config_id!r}")
    return config


class CreateConfigRequest(BaseModel):
    ConfigType: str
    Config: str
    DatasetVersion: str | None = None
    WorkspaceId: str | None = None


@router.post("")
def create_config(DatasetId: str, body: CreateConfigRequest,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    config = ctx.store().create_job_config(DatasetId, body.ConfigType, body.Config,
                                           body.DatasetVersion)
    return {"DatasetJobConfigId": config.config_id}


@router.get("/")
def list_configs(DatasetId: str, ConfigType: str | None = None,
                 DatasetVersion: str | None = None, PageNumber: int = 1, PageSize: int = 10,
                 WorkspaceId: str | None = None,
                 ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    store = ctx.store()
    configs = store.list_job_configs(store.get_dataset(DatasetId).dataset_id, ConfigType,
                                     DatasetVersion)
    return {"TotalCount": len(configs), "DatasetJobConfigs": [
        c.to_pai() for c in deps.page_of(configs, PageNumber, PageSize)]}


@router.get("/{DatasetJobConfigId}")
def get_config(DatasetId: str, DatasetJobConfigId: str, WorkspaceId: str | None = None,
               ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    return _config(ctx, DatasetId, DatasetJobConfigId).to_pai()


class ConfigChange(BaseModel):
    Config: str
    ConfigType: str | None = None
    WorkspaceId: str | None = None


@router.put("/{DatasetJobConfigId}")
def update_config(DatasetId: str, DatasetJobConfigId: str, body: ConfigChange,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    config = _config(ctx, DatasetId, DatasetJobConfigId)
    if body.ConfigType not in (None, config.config_type):
        raise ApiError(400, "InvalidParameter.ConfigType", "a config's ConfigType stays: "
                       "create another config for another type")
    ctx.store().update_job_config(config.config_id, body.Config)
    return {}


@router.delete("/{DatasetJobConfigId}")
def delete_config(DatasetId: str, DatasetJobConfigId: str, WorkspaceId: str | None = None,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    ctx.store().delete_job_config(_config(ctx, DatasetId, DatasetJobConfigId).config_id)
    return {}
