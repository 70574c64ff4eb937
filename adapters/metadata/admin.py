"""Changing and removing datasets, versions, jobs and file metas (PAI's Update*/Delete*).

Removal refuses while a job is live on what it removes: the job would write into rows that
are gone. Vectors are not the store's: whoever deletes a version removes its vectors first
(``mmdm.adapters.lifecycle`` does both), or a later version of the same name would find them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import AdapterError, AlreadyExistsError, ConflictError, NotFoundError
from ..timeutil import now_ms
from .model import Dataset, DatasetVersion, Job

if TYPE_CHECKING:
    from .store import MetadataStore

LIVE_JOB_STATUSES = ("Pending", "Running")


class AdminMixin:
    """Mixed into :class:`~mmdm.adapters.metadata.store.MetadataStore`."""

    def update_dataset(self: MetadataStore, dataset_id: str, *, name: str | None = None,
                       description: str | None = None) -> Dataset:
        ds = self.get_dataset(dataset_id)
        if name is not None and name != ds.name:
            taken = self.fetchone("SELECT 1 FROM datasets WHERE name = ?", (name,))
            if taken:
                raise AlreadyExistsError(f"a dataset named {name!r} exists already")
        self.execute("UPDATE datasets SET name = ?, description = ?, update_time = ? "
                     "WHERE dataset_id = ?",
                     (name if name is not None else ds.name,
                      description if description is not None else ds.description,
                      now_ms(), ds.dataset_id))
        return self.get_dataset(ds.dataset_id)

    def update_version(self: MetadataStore, dataset_id: str, version: str, *,
                       description: str | None) -> DatasetVersion:
        v = self.get_version(dataset_id, version)
        self.execute("UPDATE dataset_versions SET description = ?, update_time = ? "
                     "WHERE dataset_id = ? AND version_name = ?",
                     (description, now_ms(), v.dataset_id, v.version_name))
        return self.get_version(v.dataset_id, v.version_name)

    def refuse_live_jobs(self: MetadataStore, dataset_id: str, version: str | None) -> None:
        live = [j for j in self.list_jobs(dataset_id, version) if j.status in LIVE_JOB_STATUSES]
        if live:
            job = live[0]
            raise ConflictError(f"{job.job_action} job {job.job_id} is {job.status.lower()} on "
                                f"{dataset_id}/{job.dataset_version}: stop it (StopDatasetJob) "
                                "or wait for it first")

    def delete_version(self: MetadataStore, dataset_id: str, version: str) -> None:
        """The version, its file metas and its jobs (with their logs and per-file outcomes)."""
        v = self.get_version(dataset_id, version)
        self.refuse_live_jobs(v.dataset_id, v.version_name)
        scope = (v.dataset_id, v.version_name)
        files = "SELECT pk FROM file_metas WHERE dataset_id = ? AND dataset_version = ?"
        jobs = "SELECT job_id FROM jobs WHERE dataset_id = ? AND dataset_version = ?"
        with self.transaction():
            for table in ("file_tag_sets", "file_index_sets"):
                self.execute(f"DELETE FROM {table} WHERE file_pk IN ({files})", scope)
            self.execute(f"DELETE FROM work_claims WHERE file_pk IN ({files})", scope)
            for table in ("job_logs", "job_files"):
                self.execute(f"DELETE FROM {table} WHERE job_id IN ({jobs})", scope)
            for table in ("file_metas", "file_dirs", "jobs", "dataset_job_configs"):
                self.execute(f"DELETE FROM {table} WHERE dataset_id = ? AND "
                             "dataset_version = ?", scope)
            self.execute("DELETE FROM dataset_versions WHERE dataset_id = ? AND "
                         "version_name = ?", scope)

    def delete_dataset(self: MetadataStore, dataset_id: str) -> None:
        ds = self.get_dataset(dataset_id)
        self.refuse_live_jobs(ds.dataset_id, None)
        with self.transaction():
            for v in self.list_versions(ds.dataset_id):
                self.delete_version(ds.dataset_id, v.version_name)
            for table in ("jobs", "dataset_job_configs"):
                self.execute(f"DELETE FROM {table} WHERE dataset_id = ?", (ds.dataset_id,))
            self.execute("DELETE FROM datasets WHERE dataset_id = ?", (ds.dataset_id,))

    def update_job(self: MetadataStore, job_id: str, *, description: str | None) -> Job:
        self.execute("UPDATE jobs SET description = ? WHERE job_id = ?",
                     (description, self.get_job(job_id).job_id))
        return self.get_job(job_id)

    def delete_job(self: MetadataStore, job_id: str) -> None:
        """A finished job's record, logs and per-file outcomes. The tags and vectors it wrote
        stay (revert a tagging job first to remove its tags)."""
        job = self.get_job(job_id)
        if job.status in LIVE_JOB_STATUSES:
            raise ConflictError(f"job {job_id} is {job.status.lower()}: stop it first")
        with self.transaction():
            for table in ("job_logs", "job_files", "work_claims", "jobs"):
                self.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))

    def delete_file_metas(self: MetadataStore, dataset_id: str, version: str,
                          file_meta_ids: Sequence[str]) -> list[str]:
        """PAI's logical delete: the metas are ``DELETED`` (listed with Status=DELETED or ALL,
        their vectors dropped by the next index job). Returns the ids that were found."""
        found = []
        now = now_ms()
        with self.transaction():
            for file_meta_id in file_meta_ids:
                if self.execute("UPDATE file_metas SET status = 'DELETED', sync_time = ? "
                                "WHERE file_meta_id = ? AND dataset_id = ? AND "
                                "dataset_version = ?", (now, file_meta_id, dataset_id, version)):
                    found.append(file_meta_id)
        return found

    def adopt_pending_job(self: MetadataStore, job_id: str, dataset_id: str, version: str,
                          action: str, spec: dict[str, Any]) -> Job:
        """Take over a ``Pending`` job that a request created (CreateDatasetJob answers with
        its id before a worker runs it). The spec the job function derives (model, table,
        revision) joins the request's, as later jobs and the index sets read it there."""
        job = self.get_job(job_id)
        if (job.job_action, job.dataset_id, job.dataset_version) != (action, dataset_id, version):
            raise AdapterError(f"job {job_id} is a {job.job_action} job of {job.dataset_id}/"
                               f"{job.dataset_version}", is_input_error=True)
        merged = {**job.job_spec, **{k: v for k, v in spec.items() if v is not None}}
        if not self.execute("UPDATE jobs SET job_spec = ? WHERE job_id = ? AND "
                            "status = 'Pending'",
                            (json.dumps(merged, ensure_ascii=False), job_id)):
            raise ConflictError(f"job {job_id} is {self.job_status(job_id)}, not Pending")
        return self.get_job(job_id)

    def delete_prompt(self: MetadataStore, prompt_id: str) -> None:
        """A tag definition. Tags its jobs wrote stay, and stay revertible by job id."""
        prompt = self.get_prompt(prompt_id)
        live = self.fetchone("SELECT job_id FROM jobs WHERE job_action = 'IntelligentTag' AND "
                             "status IN ('Pending', 'Running') AND job_spec LIKE ?",
                             (f'%"promptId": "{prompt.prompt_id}"%',))
        if live:
            raise ConflictError(f"tagging job {live[0]} uses {prompt.prompt_id}: stop it first")
        self.execute("DELETE FROM prompts WHERE prompt_id = ?", (prompt.prompt_id,))

    def describe_prompt(self: MetadataStore, prompt_id: str, description: str | None) -> None:
        self.execute("UPDATE prompts SET description = ?, modify_time = ? WHERE prompt_id = ?",
                     (description, now_ms(), self.get_prompt(prompt_id).prompt_id))

    def set_comment(self: MetadataStore, file_meta_id: str, comment: str | None) -> None:
        """A file's Comment: the user's own field (a scan never writes it)."""
        if not self.execute("UPDATE file_metas SET comment = ? WHERE file_meta_id = ?",
                            (comment, file_meta_id)):
            raise NotFoundError(f"no file meta {file_meta_id!r}")
