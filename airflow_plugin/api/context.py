"""What the API reads from: a metadata store, a search service, a workspace folder.

The app takes an ``ApiContext`` instead of opening things itself, so the same routes serve
Airflow's api-server (stores from connections, see ``airflow_context``), a standalone uvicorn
process (embedded defaults, see ``embedded_context``) and tests (a dataset built in a tmp dir).
Everything is opened lazily on first use: Airflow imports the plugin in every component, and
only the api-server ever serves a request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from mmdm.adapters.defaults import embedded_resources, embedded_search
from mmdm.adapters.jobs.dispatch import DEFAULT_VECTOR_TABLE, JobResources
from mmdm.adapters.metadata import MetadataStore, open_store
from mmdm.adapters.metadata.embedded import workspace_store_url
from mmdm.adapters.search import RankedCache, SearchService
from mmdm.adapters.storage import OssConfig, UriReader

from .job_worker import BackgroundJobs, JobLauncher
from .thumbnails import ThumbnailCache

VECTOR_TABLE = DEFAULT_VECTOR_TABLE  # the table the pipeline DAG indexes into
StoreFactory = Callable[[], MetadataStore]
SearchFactory = Callable[[MetadataStore], SearchService]
ResourcesFactory = Callable[["ApiContext"], JobResources]


class ApiContext:
    """Lazily opened stores, search services and a file reader.

    Each worker thread of the server gets its own store (its own database connection) and
    search service, so requests run in parallel instead of queueing on one connection; the
    services share one cache of ranked vector lists (NextToken pages).

    Args:
        store_factory: opens the metadata store.
        search_factory: builds the search service over that store; by default a TAG-only one
            (no vector store, so VECTOR/MIX queries answer 400).
        workspace: the folder for the thumbnail cache and default exports, or a callable
            giving it (resolved on first use).
        oss_config: credentials to read ``oss://`` files.
        export_roots: where CreateDatasetJob may write exports (``exportDirUri`` must lie
            under one); by default the workspace's ``exports/`` folder and the roots in
            ``MMDM_EXPORT_ROOTS`` (comma-separated folders or ``oss://`` prefixes).
        data_roots: where CreateDataset and CreateDatasetVersion may register folders (a
            ``Uri`` must lie under one); by default the workspace and the roots in
            ``MMDM_DATA_ROOTS`` (comma-separated folders or ``oss://`` prefixes).
        job_resources: what CreateDatasetJob's jobs run with (models, vector stores); by
            default the offline model and the workspace's vector store.
        job_launcher: what runs a recorded job; by default a worker thread of this process
            (inside Airflow: a run of the job DAG).
    """

    def __init__(self, store_factory: StoreFactory, *,
                 search_factory: SearchFactory | None = None,
                 workspace: Path | Callable[[], Path],
                 oss_config: OssConfig | Callable[[], OssConfig | None] | None = None,
                 export_roots: Sequence[str] | None = None,
                 job_resources: ResourcesFactory | None = None,
                 job_launcher: Callable[["ApiContext"], JobLauncher] | None = None,
                 data_roots: Sequence[str] | None = None):
        self._data_roots = list(data_roots) if data_roots is not None else None
        self._job_resources = job_resources
        self._job_launcher = job_launcher
        self._jobs: JobLauncher | None = None
        self._export_roots = list(export_roots) if export_roots is not None else None
        self._store_factory = store_factory
        self._search_factory = search_factory or (lambda store: SearchService(store))
        self._workspace = workspace
        self._oss_config = oss_config
        self._lock = threading.Lock()
        self._local = threading.local()  # this thread's store and search service
        self._ranked = RankedCache()
        self._reader: UriReader | None = None
        self._thumbnails: ThumbnailCache | None = None

    def store(self) -> MetadataStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self._store_factory()
        return store

    def search(self) -> SearchService:
        search = getattr(self._local, "search", None)
        if search is None:
            search = self._local.search = self._search_factory(self.store())
            search.ranked = self._ranked
        return search

    def oss_config(self) -> OssConfig | None:
        cfg = self._oss_config
        return cfg() if callable(cfg) else cfg

    def reader(self) -> UriReader:
        with self._lock:
            if self._reader is None:
                self._reader = UriReader(self.oss_config())
            return self._reader

    def workspace(self) -> Path:
        ws = self._workspace
        return Path(ws() if callable(ws) else ws)

    def thumbnails(self) -> ThumbnailCache:
        """One cache per process, so its size bound holds across requests."""
        with self._lock:
            if self._thumbnails is None:
                self._thumbnails = ThumbnailCache(self.workspace() / "thumbnails")
            return self._thumbnails

    def default_export_dir(self) -> str:
        return (self.workspace() / "exports").as_uri() + "/"

    def job_resources(self) -> JobResources:
        if self._job_resources is not None:
            return self._job_resources(self)
        resources = embedded_resources(self.workspace(), oss_config=self.oss_config(),
                                       export_roots=self.export_roots(),
                                       default_export_dir=self.default_export_dir())
        resources.search = self._search_factory  # this context's (tests may give their own)
        return resources

    def jobs(self) -> JobLauncher:
        with self._lock:
            if self._jobs is None:
                self._jobs = (self._job_launcher(self) if self._job_launcher is not None
                              else BackgroundJobs(self._store_factory, self.job_resources))
            return self._jobs

    def export_roots(self) -> list[str]:
        if self._export_roots is not None:
            return self._export_roots
        return [self.default_export_dir(), *_env_roots("MMDM_EXPORT_ROOTS")]

    def data_roots(self) -> list[str]:
        if self._data_roots is not None:
            return self._data_roots
        return [self.workspace().as_uri() + "/", *_env_roots("MMDM_DATA_ROOTS")]


def _env_roots(name: str) -> list[str]:
    return [r.strip() for r in os.environ.get(name, "").split(",") if r.strip()]


def once(make: Callable[[], str]) -> Callable[[], str]:
    """``make()`` on the first call only, under a lock: each worker thread opens its own
    store, but finding the URL (starting the embedded server, reading a connection) happens
    once, not in twenty threads at the same moment."""
    value: list[str] = []
    lock = threading.Lock()

    def get() -> str:
        with lock:
            if not value:
                value.append(make())
            return value[0]

    return get


def embedded_context(workspace: Path, store_url: str | None = None, *,
                     vectors: bool = True,
                     export_roots: Sequence[str] | None = None,
                     data_roots: Sequence[str] | None = None) -> ApiContext:
    """The embedded defaults without Airflow: the workspace's embedded PostgreSQL (or
    ``store_url``); vector queries search each version's index sets with the offline local
    embedder and the default vector store, as the quickstart builds them."""

    url = once(lambda: store_url or workspace_store_url(workspace))

    def store() -> MetadataStore:
        return open_store(url())

    def search(store: MetadataStore) -> SearchService:
        return embedded_search(store, workspace) if vectors else SearchService(store)

    return ApiContext(store, search_factory=search, workspace=workspace,
                      oss_config=OssConfig.from_env, export_roots=export_roots,
                      data_roots=data_roots)

