"""The API's context inside Airflow: the same connections (and embedded fallbacks) the DAGs use,
and job requests that become runs of the ``mmdm_dataset_job`` DAG."""

from __future__ import annotations

import logging

from mmdm.adapters.jobs.dispatch import JobResources
from mmdm.adapters.metadata import open_store

from ..hooks.jobs import job_resources, search_service
from ..hooks.metadata import MetadataStoreHook, workspace_dir
from ..hooks.oss import OssHook
from .context import ApiContext, once
from .job_worker import BackgroundJobs

log = logging.getLogger(__name__)
JOB_DAG_ID = "mmdm_dataset_job"


class DagRunJobs:
    """A job request triggers a run of the job DAG, so the job runs on the deployment's
    executor and shows in Airflow's UI. Where that DAG is not deployed, the api-server runs
    the job itself, and the job's log says so."""

    def __init__(self, ctx: ApiContext):
        self.ctx = ctx
        self.fallback = BackgroundJobs(ctx.store, ctx.job_resources)

    def submit(self, job_id: str) -> None:
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import DagNotFound
        from airflow.utils.types import DagRunTriggeredByType

        store = self.ctx.store()
        try:
            run = trigger_dag(JOB_DAG_ID, run_id=f"mmdm__{job_id}", conf={"DatasetJobId": job_id},
                              triggered_by=DagRunTriggeredByType.REST_API)
        except DagNotFound:
            store.append_job_log(job_id, f"the {JOB_DAG_ID} DAG is not deployed: the "
                                         "api-server runs this job itself", level="WARN")
            self.fallback.submit(job_id)
            return
        run_id = run.run_id if run is not None else f"mmdm__{job_id}"
        store.append_job_log(job_id, f"Queued as Airflow DAG run {JOB_DAG_ID}/{run_id}")


def _resources(ctx: ApiContext) -> JobResources:
    return job_resources(ctx.oss_config(), ctx.export_roots(), ctx.default_export_dir())


def airflow_context() -> ApiContext:
    url = once(lambda: MetadataStoreHook().store_url())
    return ApiContext(lambda: open_store(url()), search_factory=search_service,
                      workspace=workspace_dir, oss_config=lambda: OssHook().get_config(),
                      job_resources=_resources, job_launcher=DagRunJobs)
