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
from pathlib import Path
from typing import Protocol

from mmdm.adapters.errors import ConfigError
from mmdm.adapters.jobs.dispatch import JobResources, run_job
from mmdm.adapters.jobs.runner import failure_reason
from mmdm.adapters.metadata import MetadataStore
from mmdm.adapters.models import open_embedder, open_tagger
from mmdm.adapters.models.base import Embedder, Tagger
from mmdm.adapters.vectors.base import VectorStore

log = logging.getLogger(__name__)
LOCAL = (None, "", "local")


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


def embedded_resources(workspace: Path, search, oss_config, export_roots: list[str],
                       default_export_dir: str) -> JobResources:
    """Without Airflow there are no connections: jobs run the offline model and write the
    workspace's default vector store; a JobSpec naming a connection is refused clearly."""
    from mmdm.adapters.vectors.default import default_vector_store

    def no_connection(conn: str | None, what: str) -> None:
        if conn not in LOCAL:
            raise ConfigError(f"this standalone server has no {what} connection {conn!r}: it "
                              "runs the offline local model and the workspace's vector store "
                              "(leave the connection out, or run the job in Airflow)")

    def tagger(conn: str | None, model: str | None) -> Tagger:
        no_connection(conn, "tagging")
        return open_tagger("local")

    def embedder(conn: str | None, model: str | None) -> Embedder:
        no_connection(conn, "embedding")
        return open_embedder("local")

    def vectors(conn: str | None, table: str, dimension: int,
                store: MetadataStore) -> VectorStore:
        no_connection(conn, "vector database")
        return default_vector_store(store, workspace, table, dimension)

    return JobResources(tagger=tagger, embedder=embedder, vector_store=vectors, search=search,
                        oss_config=oss_config, export_roots=export_roots,
                        default_export_dir=default_export_dir)
