"""A dataset version built by the real jobs (scan, local tagger, local embedder) on the
workspace's embedded defaults (PostgreSQL with pgvector), shared by the API tests, and clients
of the app over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mmdm.adapters.jobs.indexing import run_index_job
from mmdm.adapters.jobs.tagging import run_tagging_job
from mmdm.adapters.metadata import MetadataStore, open_store
from mmdm.adapters.metadata.embedded import workspace_store_url
from mmdm.adapters.models import LOCAL_TAG_DEFINITION, open_embedder, open_tagger
from mmdm.adapters.samples import generate_samples
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.vectors.default import default_vector_store
from mmdm.airflow_plugin.api import create_api_app, embedded_context
from mmdm.airflow_plugin.api.context import VECTOR_TABLE

PER_SCENE = 3  # 5 scenes x 3 = 15 images (+ a corrupt .jpg the scan records as failed)


@dataclass
class Built:
    workspace: Path
    store: MetadataStore
    dataset_id: str
    version: str = "v1"


def build_dataset(workspace: Path, name: str = "api-samples") -> Built:
    """The pipeline DAG's steps, called directly: build, tag, index."""
    generate_samples(workspace / "images", per_scene=PER_SCENE)
    store = open_store(workspace_store_url(workspace))
    ds = store.create_dataset(name, (workspace / "images").as_uri())
    store.create_version(ds.dataset_id)
    if not any(p.name == "pixel-statistics" for p in store.list_prompts()):  # shared store
        store.create_prompt("pixel-statistics", LOCAL_TAG_DEFINITION.tags,
                            guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    build_file_metas(store, ds.dataset_id, "v1")
    run_tagging_job(store, ds.dataset_id, "v1", tagger=open_tagger("local"),
                    prompt="pixel-statistics")
    embedder = open_embedder("local")
    vectors = default_vector_store(store, workspace, VECTOR_TABLE, embedder.dimension)
    run_index_job(store, ds.dataset_id, "v1", embedder=embedder, vector_store=vectors)
    return Built(workspace, store, ds.dataset_id)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_dataset(tmp_path_factory.mktemp("api-workspace"))


@pytest.fixture(scope="session")
def client(built: Built) -> Iterator[TestClient]:
    app = create_api_app(embedded_context(built.workspace))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def metas_url(built: Built) -> str:
    return f"/api/v1/datasets/{built.dataset_id}/datasetfilemetas"


FINAL_STATUSES = ("Succeeded", "PartialFailed", "Failed", "ManuallyStop")


def follow_job(client, jobs_url: str, job_id: str, timeout_s: float = 120) -> dict:
    """GetDatasetJob until the job (run by the server's worker after CreateDatasetJob
    answered) has ended; its last answer."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"{jobs_url}/{job_id}").json()
        if job["Status"] in FINAL_STATUSES:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['Status']} after {timeout_s} s")
        time.sleep(0.1)
