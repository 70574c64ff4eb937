"""One dataset job that a CreateDatasetJob request recorded, run as an Airflow task.

Inside Airflow the API answers a job request with the job's id and triggers a run of the
``mmdm_dataset_job`` DAG for it, so the job runs on the deployment's executor, with its
connections, logs and retries, and shows in Airflow's UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from mmdm.adapters.jobs.dispatch import run_job

from ..failures import fail_fast
from ..hooks.jobs import job_resources
from .base import DatasetVersionOperator


class DatasetJobOperator(DatasetVersionOperator):
    """Run the recorded job ``job_id`` (``dsjob-…``) with the connections its JobSpec names
    (the default connections where it names none). Templated: ``job_id``.

    A retry resumes a tagging or index job; other kinds run once (their record says why a
    later try refused to run them again).
    """

    template_fields: Sequence[str] = ("job_id",)

    def __init__(self, *, job_id: str, **kwargs: Any):
        super().__init__(dataset="", **kwargs)  # the job names its dataset and version
        self.job_id = job_id

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.metadata_hook()
        store = hook.get_store()
        job = store.get_job(self.job_id)
        if job.status == "ManuallyStop":
            raise AirflowSkipException(f"job {job.job_id} was stopped before it started")
        self.log.info("%s job %s on %s/%s, JobSpec %s", job.job_action, job.job_id,
                      job.dataset_id, job.dataset_version, job.job_spec)
        with fail_fast():
            summary = run_job(store, job, job_resources(), progress=self.log_progress)
        self.check_job(store, job.job_id)
        hook.close()
        return {"DatasetJobId": job.job_id, **summary}
