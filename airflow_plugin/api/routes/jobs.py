"""Dataset jobs: CreateDatasetJob for every JobAction, Get, List, Update, Stop and Delete.

A create request is checked, recorded as a ``Pending`` job and answered with its id at once;
the context's job worker runs it (see ``job_worker``), and GetDatasetJob follows it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from mmdm.adapters.jobs.dispatch import check_job_request, parse_job_spec

from .. import deps
from ..context import ApiContext
from ..errors import ApiError, bad_parameter

router = APIRouter(prefix="/api/v1/datasets/{DatasetId}/datasetjobs", tags=["dataset jobs"])

SORT_KEYS = {"CreateTime": "create_time", "FinishTime": "finish_time", "Status": "status",
             "JobAction": "job_action"}


def _job(ctx: ApiContext, dataset_id: str, job_id: str):  # type: ignore[no-untyped-def]
    store = ctx.store()
    ds = store.get_dataset(dataset_id)
    job = store.get_job(job_id)
    if job.dataset_id != ds.dataset_id:
        raise ApiError(404, "NotFound", f"dataset {dataset_id!r} has no job {job_id!r}")
    return job


@router.get("")
def list_jobs(DatasetId: str, DatasetVersion: str | None = None, JobAction: str | None = None,
              Status: str | None = None, PageNumber: int = 1, PageSize: int = 20,
              SortBy: str = "CreateTime", Order: str = "DESC", WithLogs: bool = False,
              WorkspaceId: str | None = None,
              ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """ListDatasetJobs: newest first by default; ``Status`` filters, ``PageNumber`` /
    ``PageSize`` page (PAI's defaults 1 and 20)."""
    if SortBy not in SORT_KEYS:
        raise bad_parameter("SortBy", f"SortBy must be one of {', '.join(SORT_KEYS)}")
    if Order.upper() not in ("ASC", "DESC"):
        raise bad_parameter("Order", "Order is ASC or DESC")
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    jobs = [j for j in store.list_jobs(ds.dataset_id, DatasetVersion, JobAction)
            if Status is None or j.status == Status]
    key = SORT_KEYS[SortBy]
    jobs.sort(key=lambda j: (getattr(j, key) is None, getattr(j, key) or 0, j.create_time),
              reverse=Order.upper() == "DESC")
    page = deps.page_of(jobs, PageNumber, PageSize)
    return {"TotalCount": len(jobs), "PageNumber": PageNumber, "PageSize": PageSize,
            "DatasetJobs": [j.to_pai(store.job_logs(j.job_id) if WithLogs else None)
                            for j in page]}


@router.get("/{DatasetJobId}")
def get_job(DatasetId: str, DatasetJobId: str, DatasetVersion: str | None = None,
            WorkspaceId: str | None = None,
            ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """GetDatasetJob, with its logs, its result and the reasons files failed."""
    job = _job(ctx, DatasetId, DatasetJobId)
    store = ctx.store()
    failures = [{"FileKey": key, "Reason": reason}
                for key, reason in store.job_file_failures(job.job_id, limit=100)]
    return {**job.to_pai(store.job_logs(job.job_id)), "Result": job.result,
            "FailedFiles": failures}


class CreateJobRequest(BaseModel):
    JobAction: str
    JobSpec: dict[str, Any] | str = "{}"
    DatasetVersion: str | None = None
    JobMode: str = "Full"
    Description: str | None = None
    WorkspaceId: str | None = None


@router.post("")
def create_job(DatasetId: str, body: CreateJobRequest,
               ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """CreateDatasetJob: ``{RequestId, DatasetJobId}``; the job runs after the answer."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    version = deps.version_name(store, ds.dataset_id, body.DatasetVersion)
    spec = {**store.job_defaults(ds.dataset_id, version, body.JobAction),
            **parse_job_spec(body.JobSpec)}  # the dataset's job configs fill what is left out
    spec = check_job_request(store, ds.dataset_id, version, body.JobAction, body.JobMode, spec,
                             ctx.job_resources())
    job = store.create_job(ds.dataset_id, version, body.JobAction, job_mode=body.JobMode,
                           job_spec=spec, description=body.Description)
    ctx.jobs().submit(job.job_id)
    return {"DatasetJobId": job.job_id, "Status": job.status}


class JobChange(BaseModel):
    Description: str | None = None
    DatasetVersion: str | None = None
    WorkspaceId: str | None = None


@router.put("/{DatasetJobId}")
def update_job(DatasetId: str, DatasetJobId: str, body: JobChange,
               ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """UpdateDatasetJob: only the Description changes, as in PAI."""
    job = _job(ctx, DatasetId, DatasetJobId)
    ctx.store().update_job(job.job_id, description=body.Description)
    return {}


@router.put("/{DatasetJobId}/action/stop")
def stop_job(DatasetId: str, DatasetJobId: str, body: JobChange | None = None,
             ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """StopDatasetJob: a pending job never starts; a running one ends ``ManuallyStop`` at its
    next status check (about a second). A finished job is a 400."""
    job = _job(ctx, DatasetId, DatasetJobId)
    if not ctx.store().request_job_stop(job.job_id):
        raise ApiError(400, "InvalidStatus",
                       f"job {job.job_id} is {ctx.store().job_status(job.job_id)}: only a "
                       "Pending or Running job can be stopped")
    return {}


@router.delete("/{DatasetJobId}")
def delete_job(DatasetId: str, DatasetJobId: str, DatasetVersion: str | None = None,
               WorkspaceId: str | None = None,
               ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """DeleteDatasetJob: a finished job's record and logs (what it wrote stays)."""
    job = _job(ctx, DatasetId, DatasetJobId)
    ctx.store().delete_job(job.job_id)
    return {}
