"""CreateDatasetJob's jobs, run in the server's own process after the request has answered.

A request records a ``Pending`` job and answers its id at once, as PAI does; one worker thread
then runs the jobs in the order they came (the model services and the store are the limit,
not this process). GetDatasetJob follows a job, StopDatasetJob stops it: a ``Pending`` one
never starts, a running one ends ``ManuallyStop`` at its next status check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from mmdm.adapters.jobs.dispatch import JobResources, run_job
from mmdm.adapters.jobs.runner import failure_reason
from mmdm.adapters.metadata import MetadataStore

log = logging.getLogger(__name__)


class JobLauncher(Protocol):
    """Runs a recorded ``Pending`` job after the request that recorded it has answered."""

    def submit(self, job_id: str) -> object: ...


class BackgroundJobs:
    """A single worker thread with its own store connection."""

    def __init__(self, open_store: Callable[[], MetadataStore],
                 resources: Callable[[], JobResources]):
        self._open_store, self._resources = open_store, resources
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmdm-job")
        self._local = threading.local()

    def submit(self, job_id: str) -> Future[None]:
        return self._executor.submit(self._run, job_id)

    def _store(self) -> MetadataStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self._open_store()
        return store

    def _run(self, job_id: str) -> None:
        store = self._store()
        job = store.get_job(job_id)
        if job.status != "Pending":  # stopped (or deleted) before it started
            return
        try:
            run_job(store, job, self._resources())
        except Exception as exc:  # the job records its own failure once it has started
            log.warning("dataset job %s failed: %s", job_id, failure_reason(exc))
            if store.job_status(job_id) == "Pending":  # it failed before it could start
                store.append_job_log(job_id, f"Job failed: {failure_reason(exc)}", "ERROR")
                store.finish_job(job_id, "Failed", {"error": failure_reason(exc)})

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

