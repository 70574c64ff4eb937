"""Dataset jobs: list/get every kind; create FileMetaExport (the gallery's "Export results").

Tagging and indexing jobs call model services for minutes to hours: they run as Airflow DAG
tasks (retries, logs, pools), not inside an API request, so this route creates exports only.
An export streams metas to files and runs within the request.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from mmdm.adapters.export.job import run_export_job
from mmdm.adapters.storage.roots import within_any

from .. import deps
from ..context import ApiContext
from ..errors import ApiError, bad_parameter

router = APIRouter(prefix="/api/v1/datasets/{DatasetId}/datasetjobs", tags=["dataset jobs"])

# Request options that page or draw a result list: meaningless for an export of all matches.
_PAGING_PARAMS = ("MaxResults", "PageSize", "NextToken", "ThumbnailMode", "WorkspaceId",
                  "DatasetVersion")


@router.get("")
def list_jobs(DatasetId: str, DatasetVersion: str | None = None, JobAction: str | None = None,
              ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    jobs = [j.to_pai() for j in store.list_jobs(ds.dataset_id, DatasetVersion, JobAction)]
    return {"TotalCount": len(jobs), "DatasetJobs": jobs}


@router.get("/{DatasetJobId}")
def get_job(DatasetId: str, DatasetJobId: str,
            ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    job = store.get_job(DatasetJobId)
    if job.dataset_id != ds.dataset_id:
        raise ApiError(404, "NotFound", f"dataset {DatasetId!r} has no job {DatasetJobId!r}")
    return {**job.to_pai(store.job_logs(job.job_id)), "Result": job.result}


class CreateJobRequest(BaseModel):
    JobAction: str
    JobSpec: dict[str, Any] | str = "{}"
    DatasetVersion: str | None = None
    JobMode: str = "Full"
    Description: str | None = None
    WorkspaceId: str | None = None


def _spec(body: CreateJobRequest) -> dict[str, Any]:
    spec = body.JobSpec
    if isinstance(spec, str):  # PAI sends JobSpec as a JSON string
        try:
            spec = json.loads(spec or "{}")
        except json.JSONDecodeError as err:
            raise bad_parameter("JobSpec", f"JobSpec is not JSON: {err}") from None
    if not isinstance(spec, dict):
        raise bad_parameter("JobSpec", "JobSpec must be a JSON object")
    return spec


def _export_query(query: Any) -> Any:
    if isinstance(query, dict):
        return {k: v for k, v in query.items() if k not in _PAGING_PARAMS and v not in ("", None)}
    return query  # a DSL string, or None for everything


@router.post("")
def create_job(DatasetId: str, body: CreateJobRequest,
               ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """CreateDatasetJob for ``FileMetaExport``: ``JobSpec`` = ``{query, filteredAttributes,
    exportDirUri}``; ``exportDirUri`` defaults to the workspace's ``exports/`` folder and must
    lie under one of the server's export roots."""
    if body.JobAction != "FileMetaExport":
        raise bad_parameter("JobAction", f"{body.JobAction!r} jobs run as Airflow DAG tasks; "
                            "this API creates FileMetaExport jobs")
    if body.JobMode != "Full":
        raise bad_parameter("JobMode", "FileMetaExport supports JobMode Full only")
    spec = _spec(body)
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    version = deps.version_name(store, ds.dataset_id, body.DatasetVersion)
    export_dir = spec.get("exportDirUri") or ctx.default_export_dir()
    if not within_any(export_dir, ctx.export_roots()):
        raise bad_parameter("JobSpec.exportDirUri", f"{export_dir!r} is not under an export "
                            f"root of this server ({', '.join(ctx.export_roots())})")
    result = run_export_job(store, ds.dataset_id, version, export_dir_uri=export_dir,
                            query=_export_query(spec.get("query")),
                            filtered_attributes=spec.get("filteredAttributes"),
                            search=ctx.search(), oss_config=ctx.oss_config(),
                            description=body.Description)
    job = store.get_job(result.job_id) if result.job_id else None
    return {"DatasetJobId": result.job_id, "Status": job.status if job else None,
            **result.to_dict()}
