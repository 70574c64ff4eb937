"""What every mmdm operator shares: the dataset/version it works on and the metadata store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from mmdm.adapters.metadata import MetadataStore
from mmdm.adapters.progress import Progress

from ..hooks.metadata import MetadataStoreHook

# A PartialFailed job passes its task while at most this share of its files failed: a few
# corrupt images should not stop a pipeline; a wrong model key or a dead endpoint does.
DEFAULT_MAX_FAILED_FRACTION = 0.1


class DatasetVersionOperator(BaseOperator):
    """Base class: works on one dataset version.

    :param dataset: dataset id (``d-…``) or name. Templated.
    :param version: version name, e.g. ``v1``. Templated.
    :param metadata_conn_id: the metadata store's connection (PostgreSQL or SQLite); when the
        default one is not defined, the embedded PostgreSQL in the mmdm workspace.
    :param max_failed_fraction: for jobs over files (build, tag, revert, index): a job that
        ends ``PartialFailed`` fails the task when more than this share of its files failed
        (default 0.1); a ``Failed`` job always fails it. The task log lists failure reasons.
    """

    template_fields: Sequence[str] = ("dataset", "version")

    def __init__(self, *, dataset: str, version: str = "v1",
                 metadata_conn_id: str | None = MetadataStoreHook.default_conn_name,
                 max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION, **kwargs: Any):
        super().__init__(**kwargs)
        self.dataset = dataset
        self.version = version
        self.metadata_conn_id = metadata_conn_id
        self.max_failed_fraction = max_failed_fraction

    @staticmethod
    def job_owner(context: Context) -> str | None:
        """This task instance, as the owner of the jobs it starts: a retry of the task then
        resumes the job an earlier try left running (killed worker, out of memory)."""
        ti = context.get("ti")
        if ti is None:
            return None
        return f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"

    def check_job(self, store: MetadataStore, job_id: str) -> None:
        """Fail the task when the job failed, or failed for too many of its files.

        Raises:
            AirflowException: so the task's ``retries`` apply (a retry runs the job's pending
                and failed files again).
        """
        job = store.get_job(job_id)
        failed, total = job.failed_file_count, job.total_file_count
        reasons = store.job_file_failures(job_id, limit=10)
        for key, reason in reasons:
            self.log.warning("failed: %s: %s", key, reason)
        too_many = job.status == "PartialFailed" and failed > self.max_failed_fraction * total
        if job.status == "Failed" or too_many:
            first = f"; first reason: {reasons[0][1]}" if reasons else ""
            limit = (f" (more than max_failed_fraction={self.max_failed_fraction})"
                     if too_many else "")
            raise AirflowException(f"{job.job_action} job {job_id} ended {job.status}: {failed} "
                                   f"of {total} files failed{limit}{first}")

    def metadata_hook(self) -> MetadataStoreHook:
        return MetadataStoreHook(self.metadata_conn_id)

    def log_progress(self, p: Progress) -> None:
        self.log.info("%s: %s", self.task_id, p)
