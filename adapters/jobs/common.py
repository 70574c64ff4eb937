"""Helpers shared by the job kinds: opening or resuming a job record, reading images."""

from __future__ import annotations

from typing import Any

from ..errors import AdapterError
from ..metadata import FileMeta, Job, MetadataStore
from ..metadata.store import LOST_AFTER_S
from ..models.base import ImageInput
from ..storage import OssConfig, UriReader


def open_job(store: MetadataStore, dataset_id: str, version: str, action: str, *,
             mode: str, spec: dict[str, Any], resume_job_id: str | None,
             owner: str | None = None) -> Job:
    """A new job, or the job to resume or start (which must be of the same action and
    dataset): ``resume_job_id`` may name a ``Pending`` job a request created.

    Running jobs of the version whose worker stopped beating are marked ``Failed`` first. With
    ``owner`` (e.g. an Airflow task instance), that owner's own interrupted job is resumed
    instead of starting over: its earlier run died while running, so a retry takes it over.
    """
    ds = store.get_dataset(dataset_id)
    store.get_version(ds.dataset_id, version)
    if mode not in ("Full", "Increment"):
        raise AdapterError(f"JobMode must be Full or Increment, not {mode!r}", is_input_error=True)
    store.fail_lost_jobs(ds.dataset_id, version, LOST_AFTER_S)
    if resume_job_id is None and owner is not None:
        previous = store.owned_job(owner, action)
        if previous is not None and _interrupted(previous):
            resume_job_id = previous.job_id
    if resume_job_id is None:
        _refuse_overlap(store, ds.dataset_id, version, action, spec.get("shard"))
        return store.create_job(ds.dataset_id, version, action, job_mode=mode, job_spec=spec,
                                owner=owner)
    job = store.get_job(resume_job_id)
    if job.status == "Pending":  # created by a request, run now (see adopt_pending_job)
        return store.adopt_pending_job(job.job_id, ds.dataset_id, version, action, spec)
    if (job.job_action, job.dataset_id, job.dataset_version) != (action, ds.dataset_id, version):
        raise AdapterError(f"job {resume_job_id} is a {job.job_action} job of "
                           f"{job.dataset_id}/{job.dataset_version}", is_input_error=True)
    store.append_job_log(job.job_id, "Job resumed")
    return job


# Run by FileJobRunner, which claims its files on stores that share work (PostgreSQL).
SHARED_ACTIONS = ("IntelligentTag", "SemanticIndex")


def _refuse_overlap(store: MetadataStore, dataset_id: str, version: str, action: str,
                    shard: Any) -> None:
    """Where jobs cannot split a version's files (SQLite), one live job of an action per
    version and shard: a second would send the same files to the model again (and wait for
    the one writer). On PostgreSQL jobs claim their files, so any number run at once."""
    if store.shares_work and action in SHARED_ACTIONS:
        return
    for job in store.list_jobs(dataset_id, version, action):
        other = job.job_spec.get("shard")
        disjoint = shard is not None and other is not None and (
            list(shard)[1] == list(other)[1] and list(shard)[0] != list(other)[0])
        if job.status == "Running" and not disjoint:
            raise AdapterError(
                f"{action} job {job.job_id} is running on {dataset_id}/{version}; a second one "
                "would process the same files again. Wait for it (or stop it), or split the "
                "work into shards", retriable=True)


def _interrupted(job: Job) -> bool:
    """Died while running: still ``Running`` (only one run of an owner exists at a time), or
    marked lost by :meth:`MetadataStore.fail_lost_jobs`."""
    return job.status == "Running" or (
        job.status == "Failed" and str(job.result.get("error", "")).startswith("worker lost"))


class ImageLoader:
    """Turns file metas into model inputs: bytes (sent as data URIs) or signed OSS URLs."""

    def __init__(self, oss_config: OssConfig | None = None, *, signed_urls: bool = False):
        self.reader = UriReader(oss_config)
        self.signed_urls = signed_urls

    def load(self, meta: FileMeta) -> ImageInput:
        content_type = meta.content_type or "image/jpeg"
        if self.signed_urls and meta.uri.startswith("oss://"):
            return ImageInput(meta.uri, None, content_type, self.reader.signed_url(meta.uri))
        return ImageInput(meta.uri, self.reader.read(meta.uri), content_type)
